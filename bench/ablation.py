"""Ablations on the demo: the full model against variants with one paper detail switched off.

    python -m bench.ablation                          # every registered attention
    python -m bench.ablation --variants soft,mean,no_selector --seeds 1234,1235,1236

Variants: each registered attention by name, the paper's switches turned off (no_selector,
no_deep_output) or on (frame_positions). Each trains with the same config, and its best checkpoint
is scored on the test split: the COCO metrics, each clip kind's CIDEr and, on two-object clips, how
often the caption binds each colour to the right shape, which an average over the clip cannot tell
apart. Several --seeds give the mean and, in brackets, the range. Writes runs/ablation.md, and
evaluation.summary's mean ± std table into runs/ablation/summary.md and .csv."""
from __future__ import annotations

import json
import os

import config as config_module
import train as train_module
from evaluation.summary import seeds_of, summarize
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
    """On the two-object test clips, in %: captions naming both objects' colours and shapes ("named"),
    those among them pairing each colour with its own shape ("bound"), and both ("right")."""
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
    with open(os.path.join(config.corpus.data_root, "Demo", "annotations", "clips.json")) as handle:
        return {clip["id"]: clip for clip in json.load(handle)["clips"]}


def scored_row(config, variant: str, seed: int, scores: dict, **extra) -> dict:
    """A finished run's table row: its test scores and the measures of its test predictions."""
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
    return {**scored_row(config, name, seed, train_module.train(config)),
            "run_dir": os.path.join(config.train.run_root, config.train.run_name)}


COLUMNS = {"Bleu_4": "BLEU-4", "METEOR": "METEOR", "ROUGE_L": "ROUGE-L", "CIDEr": "CIDEr",
           "CIDEr_one_event": "CIDEr one event", "CIDEr_two_objects": "CIDEr two objects",
           "CIDEr_two_actions": "CIDEr two actions", "named": "two objects named %",
           "bound": "bound right when named %", "right": "named and bound %"}


def summary(values: list) -> str:
    """The value, or the mean and, in brackets, the lowest and highest."""
    mean = f"{sum(values) / len(values):.1f}"
    return mean if len(values) == 1 else f"{mean} ({min(values):.1f}–{max(values):.1f})"


def parse_seeds(parser, text: str) -> list:
    try:
        return seeds_of(text)
    except config_module.ConfigError as error:
        parser.error(str(error))


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
    print(summarize([row["run_dir"] for row in rows], os.path.join(base.train.run_root, "ablation")))


if __name__ == "__main__":
    main()
