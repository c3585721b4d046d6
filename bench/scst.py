"""Self-critical training on the demo: cross-entropy alone against cross-entropy + SCST with each
baseline, each seed's SCST runs going on from a copy of its cross-entropy run. Writes runs/scst/scst.md.

    python -m bench.scst --seeds 1234 --train.epochs 20 --scst_epochs 3"""
from __future__ import annotations

import os
import shutil
import time

import config as config_module
import train as train_module
from bench.ablation import demo_parser, scored_row, show_and_save, table

VARIANTS = {"cross-entropy only": None, "+ SCST, mean of samples": "mean_of_samples", "+ SCST, greedy": "greedy"}
COLUMNS = {"Bleu_4": "BLEU-4", "METEOR": "METEOR", "ROUGE_L": "ROUGE-L", "CIDEr": "CIDEr",
           "CIDEr_two_objects": "CIDEr two objects", "right": "two objects named and bound %",
           "seconds": "seconds (this phase)"}


def run_seed(base, seed: int, scst_epochs: int) -> list:
    rows, xe_dir = [], None
    for variant, baseline in VARIANTS.items():
        config = config_module.Config.from_dict(base.to_dict())
        config.train.seed, config.train.scst_epochs = seed, scst_epochs if baseline else 0
        config.train.scst_baseline = baseline or config.train.scst_baseline
        config.train.run_name = f"seed{seed}_{baseline or 'xe'}"
        run_dir = os.path.join(config.train.run_root, config.train.run_name)
        if xe_dir:                                   # resumes: the SCST phase from its best.pt
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.copytree(xe_dir, run_dir)
        start = time.perf_counter()
        rows.append(scored_row(config, variant, seed, train_module.train(config), seconds=time.perf_counter() - start))
        xe_dir = xe_dir or run_dir
    return rows


def main(argv=None) -> None:
    parser, parse = demo_parser(__doc__, "python -m bench.scst", "comma-separated training seeds", "1234,1235,1236")
    parser.add_argument("--scst_epochs", type=int, default=5, help="SCST epochs after cross-entropy")
    args, base, seeds = parse(argv)
    if args.__dict__.get("train.epochs") is None:
        base.train.epochs = 10                         # the quick start's 20 saturate the demo
    if args.__dict__.get("train.run_root") is None:
        base.train.run_root = os.path.join(base.train.run_root, "scst")
    show_and_save(table([row for seed in seeds for row in run_seed(base, seed, args.scst_epochs)], COLUMNS),
                  base.train.run_root, "scst.md")


if __name__ == "__main__":
    main()
