"""Ablations on the demo: each registered attention and the paper's switches (no_selector, no_deep_output,
frame_positions), scored on the test split over --seeds (mean, lowest–highest). Writes runs/ablation.md, and
evaluation.summary's tables into runs/ablation/summary.md and .csv.

    python -m bench.ablation --variants soft,mean,no_selector --seeds 1234,1235,1236"""
from __future__ import annotations

import os

import config as config_module
import train as train_module
from evaluation.summary import markdown, seeds_of, summarize
from models.attention import ATTENTIONS
from splits.demo.captions import SHAPE_WORDS
from splits.demo.world import COLOUR_ORDER
from splits.layout import prepare_command
from utils import atomic_write_bytes, read_json

VARIANTS = {**{name: {"model.attention": name} for name in ATTENTIONS}, "no_selector": {"model.use_selector": False},
            "no_deep_output": {"model.deep_output": False}, "frame_positions": {"model.frame_positions": True}}
WORD_TO_SHAPE = {word: shape for shape, words in SHAPE_WORDS.items() for word in words}
COLUMNS = {"Bleu_4": "BLEU-4", "METEOR": "METEOR", "ROUGE_L": "ROUGE-L", "CIDEr": "CIDEr",
           "CIDEr_one_event": "CIDEr one event", "CIDEr_two_objects": "CIDEr two objects",
           "CIDEr_two_actions": "CIDEr two actions", "named": "two objects named %",
           "bound": "bound right when named %", "right": "named and bound %"}


def colour_shape_pairs(caption: str) -> set:
    words = caption.split()
    return {(w, WORD_TO_SHAPE[next_word]) for w, next_word in zip(words, words[1:])
            if w in COLOUR_ORDER and next_word in WORD_TO_SHAPE}


def binding(predictions: list, clips: dict) -> dict:
    """On two-object clips, in %: captions naming both colours and shapes ("named"), those pairing each
    colour with its own shape ("bound"), and both ("right"): what an average over the clip cannot tell."""
    total = named = right = 0
    for prediction in predictions:
        spec = clips[prediction["video_id"]]["spec"]
        if spec["kind"] == "two_objects":
            truth = {(obj["colour"], obj["shape"]) for obj in spec["objects"]}
            said, total = colour_shape_pairs(prediction["caption"]), total + 1
            if all(sorted(pair[i] for pair in said) == sorted(pair[i] for pair in truth) for i in (0, 1)):
                named, right = named + 1, right + (said == truth)
    return {"named": 100.0 * named / max(total, 1), "bound": 100.0 * right / max(named, 1),
            "right": 100.0 * right / max(total, 1)}


def scored_row(config, variant: str, seed: int, scores: dict, **extra) -> dict:
    """A finished run's table row: its test scores and the binding of its test predictions."""
    run_dir = os.path.join(config.train.run_root, train_module.run_id(config))
    predictions = read_json(os.path.join(run_dir, f"{config.corpus.test_split}_predictions.json"),
                            "train.py writes it when the run finishes; run the ablation again")
    clips = read_json(os.path.join(config.corpus.data_root, "Demo", "annotations", "clips.json"),
                      f"rebuild the demo corpus: {prepare_command(config)}")["clips"]
    return {"variant": variant, "seed": seed, **extra, **binding(predictions, {clip["id"]: clip for clip in clips}),
            **{k: scores[k] for k in ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr") if k in scores},
            **{f"CIDEr_{kind}": row["CIDEr"] for kind, row in scores.get("by_category", {}).items()}}


def table(rows: list, columns: dict = COLUMNS) -> str:
    """One line per variant over all its seeds: the value, or the mean and (lowest–highest)."""
    def cell(values):
        mean = f"{sum(values) / len(values):.1f}"
        return mean if len(values) == 1 else f"{mean} ({min(values):.1f}–{max(values):.1f})"
    groups = [[r for r in rows if r["variant"] == variant] for variant in dict.fromkeys(r["variant"] for r in rows)]
    return markdown([{"variant": runs[0]["variant"], "seeds": ", ".join(str(r["seed"]) for r in runs),
                      **{label: cell([r.get(c, float("nan")) for r in runs]) for c, label in columns.items()}}
                     for runs in groups], ["variant", "seeds", *columns.values()])


def demo_parser(doc: str, prog: str, seeds_help: str, seeds: str | None = None):
    """(parser, parse: argv -> (args, base config, seeds)), the demo ablations' command line."""
    parser = config_module.argument_parser(doc, prog=prog)
    config_module.add_arguments(parser)
    parser.add_argument("--seeds", default=seeds, help=seeds_help)

    def parse(argv):
        args = parser.parse_args(argv)
        base = config_module.from_args(args)
        if base.corpus.name != "Demo":
            parser.error("the two-object measures read the demo's clip specifications: use the Demo corpus")
        try:
            return args, base, seeds_of(args.seeds) if args.seeds else [base.train.seed]
        except config_module.ConfigError as error:
            parser.error(str(error))
    return parser, parse


def show_and_save(text: str, folder: str, name: str) -> None:
    print(text)
    atomic_write_bytes(os.path.join(folder, name), lambda handle: handle.write(text.encode("utf-8") + b"\n"))


def main(argv=None) -> None:
    parser, parse = demo_parser(__doc__, "python -m bench.ablation", "comma-separated training seeds, each "
                                "variant trained once per seed (default: the config's train.seed)")
    parser.add_argument("--variants", default=",".join(ATTENTIONS), help=f"comma-separated: {', '.join(VARIANTS)}")
    args, base, seeds = parse(argv)
    if any(name not in VARIANTS for name in args.variants.split(",")):
        parser.error(f"unknown variants in {args.variants}; choose from {', '.join(VARIANTS)}")
    rows = []
    for name in args.variants.split(","):
        for seed in seeds:
            config = config_module.Config.from_dict(base.to_dict())
            for key, value in {**VARIANTS[name], "train.seed": seed}.items():
                config_module.set_field(config, key, value)
            config.train.run_name = f"ablation_{name}_{train_module.run_id(config)}"
            rows.append({**scored_row(config, name, seed, train_module.train(config)),
                         "run_dir": os.path.join(config.train.run_root, config.train.run_name)})
    show_and_save(table(rows), base.train.run_root, "ablation.md")
    print(summarize([row["run_dir"] for row in rows], os.path.join(base.train.run_root, "ablation")))


if __name__ == "__main__":
    main()
