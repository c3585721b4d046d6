"""Self-critical training on the demo: cross-entropy alone against cross-entropy + SCST with each
baseline, over several training seeds.

    python -m bench.scst                                     # 3 seeds, 10 XE epochs, 5 SCST epochs
    python -m bench.scst --seeds 1234 --train.epochs 20 --scst_epochs 3

Each seed's cross-entropy run trains once and every SCST variant goes on from a copy of its folder;
each best checkpoint is scored on the test split (COCO metrics, bench/ablation.py's two-object
measures, each phase's seconds). Writes runs/scst/scst.md."""
from __future__ import annotations

import os
import shutil
import time

import config as config_module
import train as train_module
from bench.ablation import parse_seeds, scored_row, show_and_save, table

VARIANTS = {"cross-entropy only": None, "+ SCST, mean of samples": "mean_of_samples",
            "+ SCST, greedy": "greedy"}
COLUMNS = {"Bleu_4": "BLEU-4", "METEOR": "METEOR", "ROUGE_L": "ROUGE-L", "CIDEr": "CIDEr",
           "CIDEr_two_objects": "CIDEr two objects", "right": "two objects named and bound %",
           "seconds": "seconds (this phase)"}


def run_seed(base, seed: int, scst_epochs: int) -> list:
    xe = config_module.Config.from_dict(base.to_dict())
    xe.train.seed, xe.train.scst_epochs = seed, 0
    xe.train.run_name = f"seed{seed}_xe"
    started = time.perf_counter()
    rows = [scored_row(xe, "cross-entropy only", seed, train_module.train(xe),
                       seconds=time.perf_counter() - started)]
    xe_dir = os.path.join(xe.train.run_root, xe.train.run_name)
    for variant, baseline in list(VARIANTS.items())[1:]:     # the first is the run above
        scst = config_module.Config.from_dict(xe.to_dict())
        scst.train.scst_epochs, scst.train.scst_baseline = scst_epochs, baseline
        scst.train.run_name = f"seed{seed}_{baseline}"
        run_dir = os.path.join(scst.train.run_root, scst.train.run_name)
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.copytree(xe_dir, run_dir)             # resumes: the SCST phase from its best.pt
        started = time.perf_counter()
        scores = train_module.train(scst)
        rows.append(scored_row(scst, variant, seed, scores, seconds=time.perf_counter() - started))
    return rows


def main(argv=None) -> None:
    parser = config_module.argument_parser(__doc__, prog="python -m bench.scst")
    config_module.add_arguments(parser)
    parser.add_argument("--seeds", default="1234,1235,1236", help="comma-separated training seeds")
    parser.add_argument("--scst_epochs", type=int, default=5, help="SCST epochs after cross-entropy")
    args = parser.parse_args(argv)
    base = config_module.from_args(args)
    if base.corpus.name != "Demo":
        parser.error("the two-object measures read the demo's clip specifications: use the Demo corpus")
    if args.__dict__.get("train.epochs") is None:
        base.train.epochs = 10                         # the quick start's 20 saturate the demo
    if args.__dict__.get("train.run_root") is None:
        base.train.run_root = os.path.join(base.train.run_root, "scst")
    rows = [row for seed in parse_seeds(parser, args.seeds) for row in run_seed(base, seed, args.scst_epochs)]
    show_and_save(table(rows, COLUMNS), base.train.run_root, "scst.md")


if __name__ == "__main__":
    main()
