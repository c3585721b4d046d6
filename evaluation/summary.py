"""A results table over run folders: mean ± std of the test scores of runs that differ only in their seed.

    python -m evaluation.summary runs/* [--out DIR]

Runs are grouped by every config field but train.seed, run_root, run_name and log_every; a row shows the
settings that differ, n, the seeds, and per metric the mean ± sample std of <test split>_scores.json
(per category in a second table where there are some). Writes summary.md and summary.csv into DIR
(default: the folder holding the runs) and prints the Markdown.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys

import config as config_module
from config import ConfigError
from models import checkpoints
from utils import DataError, atomic_write_bytes, exit_status, read_json

NOT_GROUPED = ("train.seed", "train.run_root", "train.run_name", "train.log_every")


def seeds_of(text: str) -> list:
    try:
        return [int(seed) for seed in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds takes whole numbers separated by commas, not {text!r}") from None


def flat_settings(values: dict) -> dict:
    return {f"{section}.{name}": value for section, fields in values.items() for name, value in fields.items()}


def read_run(run_dir: str) -> dict:
    best = os.path.join(run_dir, "best.pt")
    if not os.path.isfile(best):
        raise DataError(f"{run_dir} holds no best.pt: not a run folder of train.py")
    saved = checkpoints.load(best)["config"]
    scores_path = os.path.join(run_dir, f"{saved['corpus']['test_split']}_scores.json")
    if not os.path.isfile(scores_path):
        raise DataError(f"{run_dir} has no {os.path.basename(scores_path)}: the run is unfinished or "
                        "trained without scores (eval.metrics empty and no CIDEr-D)")
    scores = read_json(scores_path, f"run `python run.py --checkpoint {best}` to write it again")
    return {"dir": run_dir, "settings": flat_settings(saved), "seed": saved["train"]["seed"],
            "scores": {k: v for k, v in scores.items() if isinstance(v, (int, float))},
            "by_category": scores.get("by_category") or {}}


def mean_std(values: list) -> tuple:
    """(mean, sample std: nan for one value); (nan, nan) for none."""
    mean = sum(values) / len(values) if values else math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else math.nan


def table_rows(runs: list) -> tuple:
    """(rows, settings that differ, overall metrics, per-category metrics): {setting: value, "category", "n",
    "seeds", metric: (mean, std)} per configuration (category "all") and per configuration and category."""
    groups = {}
    for run in runs:
        key = json.dumps({k: v for k, v in run["settings"].items() if k not in NOT_GROUPED}, sort_keys=True)
        groups.setdefault(key, []).append(run)
    groups = list(groups.values())
    keys = [k for k in groups[0][0]["settings"] if k not in NOT_GROUPED]
    differing = [k for k in keys if len({json.dumps(g[0]["settings"].get(k)) for g in groups}) > 1]
    overall = list(dict.fromkeys(m for g in groups for r in g for m in r["scores"]))
    per_category = list(dict.fromkeys(m for g in groups for r in g for c in r["by_category"].values()
                                      for m in c if m != "videos"))
    metrics, rows = list(dict.fromkeys(overall + per_category)), []
    for runs in groups:
        for category in ["all", *dict.fromkeys(c for r in runs for c in r["by_category"])]:
            tables = [r["scores"] if category == "all" else r["by_category"].get(category) for r in runs]
            used = [(r, t) for r, t in zip(runs, tables) if t is not None]
            rows.append({**{k: runs[0]["settings"][k] for k in differing}, "category": category, "n": len(used),
                         "seeds": " ".join(str(r["seed"]) for r, _ in used),
                         **{m: mean_std([t[m] for _, t in used if m in t]) for m in metrics}})
    return rows, differing, overall, per_category


def option_text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _cell(value) -> str:
    if not isinstance(value, tuple):
        return option_text(value)
    mean, std = value
    return "–" if math.isnan(mean) else f"{mean:.1f}" if math.isnan(std) else f"{mean:.1f} ± {std:.1f}"


def markdown(rows: list, columns: list) -> str:
    return "\n".join(["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
                     + ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows])


def summarize(run_dirs: list, out_dir: str, report=print) -> str:
    """Write summary.md and summary.csv of the finished runs among run_dirs into out_dir; the Markdown."""
    runs = []
    for run_dir in filter(os.path.isdir, run_dirs):   # runs/* also matches files beside the run folders
        try:
            runs.append(read_run(run_dir))
        except DataError as error:
            report(f"note: left out: {error}")
    if not runs:
        raise DataError(f"no finished run among {' '.join(run_dirs) or '(nothing given)'}; give run folders "
                        "of train.py (runs/<run id>) that hold best.pt and the test scores")
    rows, differing, overall, per_category = table_rows(runs)
    text = markdown([r for r in rows if r["category"] == "all"], differing + ["n", "seeds"] + overall)
    if per_category:
        text += "\n\nPer category (mean per-video scores):\n\n" + markdown(
            [r for r in rows if r["category"] != "all"], differing + ["category", "n"] + per_category)
    metrics, columns = list(dict.fromkeys(overall + per_category)), differing + ["category", "n", "seeds"]
    # summary.csv: every row of both tables; a metric is two columns, <metric>_mean and <metric>_std
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns + [f"{m}_{s}" for m in metrics for s in ("mean", "std")])
    for row in rows:
        writer.writerow([option_text(row[c]) for c in columns]
                        + ["" if math.isnan(v) else repr(v) for m in metrics for v in row[m]])
    for name, content in (("summary.md", text + "\n"), ("summary.csv", out.getvalue())):
        atomic_write_bytes(os.path.join(out_dir, name), lambda f, content=content: f.write(content.encode("utf-8")))
    return text


def train_over_seeds(config, seeds: list, train) -> int:
    """Train config once per seed (each its own run folder, resumed when run again), then the table."""
    from training.run_folder import run_id
    run_dirs, name = [], config.train.run_name
    for seed in seeds:
        config.train.seed = seed
        config.train.run_name = f"{name}_seed{seed}" if name else name
        print(f"seed {seed} ({len(run_dirs) + 1} of {len(seeds)})", flush=True)
        train(config)
        run_dirs.append(os.path.join(config.train.run_root, run_id(config)))
    print(summarize(run_dirs, config.train.run_root))
    print(f"table written to {os.path.join(config.train.run_root, 'summary.md')} and summary.csv")
    return 0


def main(argv=None) -> int:
    parser = config_module.argument_parser(__doc__, prog="python -m evaluation.summary")
    parser.add_argument("runs", nargs="+", help="run folders (runs/<run id>)")
    parser.add_argument("--out", default=None, help="folder for summary.md and summary.csv")
    args = parser.parse_args(argv)
    out = args.out or os.path.dirname(os.path.abspath(os.path.normpath(args.runs[0])))
    return exit_status(lambda: print(summarize(args.runs, out, report=lambda m: print(m, file=sys.stderr))))


if __name__ == "__main__":
    sys.exit(main())
