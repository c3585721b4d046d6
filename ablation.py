"""Ablations on the demo: the full model against variants with one paper detail switched off.

    python ablation.py                          # full model vs mean pooling, same budget
    python ablation.py --variants full,mean_pooling,no_selector --train.epochs 8

Every variant trains with the same config and budget except its own switch, then its best
checkpoint is scored on the test split. Besides the COCO metrics, the table shows the mean
per-video CIDEr of each clip kind and, on clips with two objects, how often the caption binds
each colour to the right shape (an average over the clip cannot tell "a red square and a blue
circle" from "a blue square and a red circle"; attention can). Writes runs/ablation.md.
"""
from __future__ import annotations

import argparse
import json
import os

import config as config_module
import train as train_module
from splits.demo.captions import SHAPE_WORDS
from splits.demo.world import COLOUR_ORDER

VARIANTS = {
    "full": {},
    "mean_pooling": {"model.use_attention": False},
    "no_selector": {"model.use_selector": False},
    "no_deep_output": {"model.deep_output": False},
    "frame_positions": {"model.frame_positions": True},
}
WORD_TO_SHAPE = {word: shape for shape, words in SHAPE_WORDS.items() for word in words}


def colour_shape_pairs(caption: str) -> set:
    """{(colour, shape)} read off a caption: each colour word and the shape word after it."""
    words, pairs = caption.split(), set()
    for i, word in enumerate(words[:-1]):
        if word in COLOUR_ORDER and words[i + 1] in WORD_TO_SHAPE:
            pairs.add((word, WORD_TO_SHAPE[words[i + 1]]))
    return pairs


def binding_accuracy(predictions: list, clips: dict) -> float:
    """Share of two-object test clips whose caption names both objects with the right shapes."""
    right = total = 0
    for prediction in predictions:
        spec = clips[prediction["video_id"]]["spec"]
        if spec["kind"] != "two_objects":
            continue
        truth = {(obj["colour"], obj["shape"]) for obj in spec["objects"]}
        right += colour_shape_pairs(prediction["caption"]) == truth
        total += 1
    return 100.0 * right / max(total, 1)


def run_variant(base: config_module.Config, name: str) -> dict:
    config = config_module.Config.from_dict(base.to_dict())
    for key, value in VARIANTS[name].items():
        config_module.set_field(config, key, value)
    config.train.run_name = f"ablation_{name}_{train_module.run_id(config)}"
    scores = train_module.train(config)
    run_dir = os.path.join(config.train.run_root, train_module.run_id(config))
    with open(os.path.join(run_dir, f"{config.corpus.test_split}_predictions.json")) as handle:
        predictions = json.load(handle)
    annotations = os.path.join(config.corpus.data_root, "Demo", "annotations", "clips.json")
    with open(annotations) as handle:
        clips = {clip["id"]: clip for clip in json.load(handle)["clips"]}
    by_kind = scores.get("by_category", {})
    return {"variant": name, "binding": binding_accuracy(predictions, clips),
            **{k: scores[k] for k in ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr") if k in scores},
            **{f"CIDEr_{kind}": row["CIDEr"] for kind, row in by_kind.items()}}


def table(rows: list) -> str:
    kinds = ("one_event", "two_objects", "two_actions")
    lines = ["| variant | BLEU-4 | METEOR | ROUGE-L | CIDEr | CIDEr one event | CIDEr two objects "
             "| CIDEr two actions | two-object binding % |",
             "|" + " --- |" * 9]
    for r in rows:
        cells = [r["variant"]] + [f"{r.get(k, float('nan')):.1f}" for k in ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr")]
        cells += [f"{r.get(f'CIDEr_{k}', float('nan')):.1f}" for k in kinds]
        cells += [f"{r['binding']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)  # a mistyped field is an error, not a guess
    config_module.add_arguments(parser)
    parser.add_argument("--variants", default="full,mean_pooling",
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    args = parser.parse_args(argv)
    base = config_module.from_args(args)
    if base.corpus.name != "Demo":
        parser.error("the binding measure reads the demo's clip specifications: use the Demo corpus")
    rows = [run_variant(base, name) for name in args.variants.split(",")]
    text = table(rows)
    print(text)
    os.makedirs(base.train.run_root, exist_ok=True)
    with open(os.path.join(base.train.run_root, "ablation.md"), "w") as handle:
        handle.write(text + "\n")


if __name__ == "__main__":
    main()
