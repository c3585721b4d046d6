"""Ablations on the demo: the full model against variants with one paper detail switched off.

    python -m bench.ablation                          # every registered attention, same training length
    python -m bench.ablation --seeds 1234,1235,1236   # the same over three seeds
    python -m bench.ablation --variants soft,mean,no_selector --train.epochs 8

Variants: each registered attention by its name (model.attention: soft, the paper's, which every
preset uses; general; mean, the paper's mean-pooling baseline), and the paper's other switches
turned off (no_selector, no_deep_output) or on (frame_positions).

Every variant trains with the same config and epochs except its own switch, then its best
checkpoint is scored on the test split. Besides the COCO metrics, the table shows the mean
per-video CIDEr of each clip kind and, on clips with two objects, how often the caption names
both objects and how often it binds each colour to the right shape (an average over a clip of
two objects on screen equally long cannot tell "a red square and a blue circle" from "a blue
square and a red circle"; attention can). With several --seeds each cell is the mean over the
seeds and, in brackets, the lowest and highest. Writes runs/ablation.md.
"""
from __future__ import annotations

import json
import os

import config as config_module
import train as train_module
from models.attention import ATTENTIONS
from splits.demo.captions import SHAPE_WORDS
from splits.demo.world import COLOUR_ORDER

VARIANTS = {
    **{name: {"model.attention": name} for name in ATTENTIONS},
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


def binding(predictions: list, clips: dict) -> dict:
    """On the two-object test clips, in %: captions that name both objects' colours and shapes
    ("named"), those among them that pair each colour with its own shape ("bound"), and the two
    together ("right"). Naming asks for both events; binding asks to tell which colour went
    with which shape, which an average over the clip mostly loses."""
    total = named = right = 0
    for prediction in predictions:
        spec = clips[prediction["video_id"]]["spec"]
        if spec["kind"] != "two_objects":
            continue
        truth = {(obj["colour"], obj["shape"]) for obj in spec["objects"]}
        said = colour_shape_pairs(prediction["caption"])
        total += 1
        if all(sorted(pair[i] for pair in said) == sorted(pair[i] for pair in truth) for i in (0, 1)):
            named += 1
            right += said == truth
    return {"named": 100.0 * named / max(total, 1), "bound": 100.0 * right / max(named, 1),
            "right": 100.0 * right / max(total, 1)}


def demo_clips(config) -> dict:
    """{clip id: clip} of the demo's annotations, with each clip's specification."""
    with open(os.path.join(config.corpus.data_root, "Demo", "annotations", "clips.json")) as handle:
        return {clip["id"]: clip for clip in json.load(handle)["clips"]}


def scored_row(config, variant: str, seed: int, scores: dict, **extra) -> dict:
    """A table row of a finished run: its test scores and the measures of its test predictions."""
    run_dir = os.path.join(config.train.run_root, train_module.run_id(config))
    with open(os.path.join(run_dir, f"{config.corpus.test_split}_predictions.json")) as handle:
        predictions = json.load(handle)
    by_kind = scores.get("by_category", {})
    return {"variant": variant, "seed": seed, **extra, **binding(predictions, demo_clips(config)),
            **{k: scores[k] for k in ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr") if k in scores},
            **{f"CIDEr_{kind}": row["CIDEr"] for kind, row in by_kind.items()}}


def run_variant(base: config_module.Config, name: str, seed: int) -> dict:
    config = config_module.Config.from_dict(base.to_dict())
    for key, value in VARIANTS[name].items():
        config_module.set_field(config, key, value)
    config.train.seed = seed
    config.train.run_name = f"ablation_{name}_{train_module.run_id(config)}"
    return scored_row(config, name, seed, train_module.train(config))


COLUMNS = {"Bleu_4": "BLEU-4", "METEOR": "METEOR", "ROUGE_L": "ROUGE-L", "CIDEr": "CIDEr",
           "CIDEr_one_event": "CIDEr one event", "CIDEr_two_objects": "CIDEr two objects",
           "CIDEr_two_actions": "CIDEr two actions", "named": "two objects named %",
           "bound": "bound right when named %", "right": "named and bound %"}


def summary(values: list) -> str:
    """One seed: the value; several: their mean and, in brackets, the lowest and highest."""
    mean = f"{sum(values) / len(values):.1f}"
    return mean if len(values) == 1 else f"{mean} ({min(values):.1f}–{max(values):.1f})"


def parse_seeds(parser, text: str) -> list:
    """--seeds 1234,1235 -> [1234, 1235]; anything else is the parser's error."""
    try:
        return [int(seed) for seed in text.split(",")]
    except ValueError:
        parser.error(f"--seeds takes whole numbers separated by commas, not {text!r}")


def table(rows: list, columns: dict = COLUMNS) -> str:
    """One line per variant, over all its seeds; columns: {row key: header}."""
    lines = ["| " + " | ".join(["variant", "seeds", *columns.values()]) + " |",
             "|" + " --- |" * (len(columns) + 2)]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        runs = [r for r in rows if r["variant"] == variant]
        cells = [variant, ", ".join(str(r["seed"]) for r in runs)]
        cells += [summary([r.get(column, float("nan")) for r in runs]) for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def show_and_save(text: str, folder: str, name: str) -> None:
    """The table on stdout and in folder/name."""
    print(text)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w") as handle:
        handle.write(text + "\n")


def main(argv=None) -> None:
    parser = config_module.argument_parser(__doc__, prog="python -m bench.ablation")
    config_module.add_arguments(parser)
    parser.add_argument("--variants", default=",".join(ATTENTIONS),
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated training seeds, each variant trained once per seed "
                             "(default: the config's train.seed)")
    args = parser.parse_args(argv)
    base = config_module.from_args(args)
    if base.corpus.name != "Demo":
        parser.error("the binding measure reads the demo's clip specifications: use the Demo corpus")
    unknown = [name for name in args.variants.split(",") if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    seeds = parse_seeds(parser, args.seeds) if args.seeds else [base.train.seed]
    rows = [run_variant(base, name, seed) for name in args.variants.split(",") for seed in seeds]
    show_and_save(table(rows), base.train.run_root, "ablation.md")


if __name__ == "__main__":
    main()
