"""Issue 10's goals against what the benchmark measured: one table from the benchmark's JSON
files in a folder (bench/gpu_check.sh's $OUT), for the README's Speed section.

    python -m bench.goals bench_results

A row per run and measurement: the training epoch, beam-5 of the 670 test videos at full length,
and the peak GPU memory, each beside the reference implementation's number on one H200 (issue
10) and the goal. A run on a reduced workload (--clips, --feature_size) is listed without them:
its numbers are not comparable.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

# hobincar/SA-LSTM beside this repo on one NVIDIA H200 (PyTorch 2.11, CUDA 13), as issue 10
# measured it, and the goals.
REFERENCE = {"train": 43.2, "beam_test_full": 58.1, "peak_gib": 2.99}
GOALS = {"train": 1.7, "beam_test_full": 0.1, "peak_gib": 2.0}
NAMES = {"train": "training epoch", "beam_test_full": "beam-5, 670 test videos, all 31 steps",
         "peak_gib": "peak GPU memory"}


def how(report: dict) -> str:
    """What the run changed from the default fast path."""
    args = report["args"]
    parts = [] if report.get("no_baseline") else ["beside the baseline"]
    parts += [f"{args['autocast']} autocast"] if args.get("autocast", "off") != "off" else []
    parts += [label for flag, label in (("tf32", "TF32"), ("unfused_cell", "unfused LSTM cell"),
                                        ("cuda_graphs", "training as CUDA graphs"),
                                        ("decode_graphs", "decoding as CUDA graphs")) if args.get(flag)]
    if report.get("complete") is False:   # the stages measured before a time limit stopped it
        parts.append("**stopped before its end**")
    return ", ".join(parts) or "default"


def measurements(report: dict) -> list:
    """[(key, measured, note)] of the run: seconds or GiB of this code's path."""
    stages, found = report["stages"], []
    if "train" in stages:
        fast = stages["train"]["paths"]["fast"]
        note = " (extrapolated)" if fast.get("extrapolated") else ""
        if "capture_epoch_seconds" in stages["train"]:
            note += f"; first epoch, capturing: {stages['train']['capture_epoch_seconds']:.2f} s"
        found.append(("train", fast["epoch_seconds"], note))
    if "beam_test_full" in stages:
        stage = stages["beam_test_full"]
        note = f" (batches of {report['args']['eval_batch_size']})"
        if "capture_seconds" in stage:
            note += f"; first pass, capturing: {stage['capture_seconds']:.2f} s"
        found.append(("beam_test_full", stage["paths"]["fast"]["seconds"], note))
    peak = (report.get("peak_gib") or {}).get("fast")
    if peak is not None:
        found.append(("peak_gib", peak, ""))
    return found


def table(reports: list) -> str:
    lines = ["| measurement | run | this code | reference (H200) | speed-up | goal | met |",
             "|---|---|---|---|---|---|---|"]
    machines = sorted({f"{r['environment']['device']}, torch {r['environment']['torch']}" for r in reports})
    for report in reports:
        reduced = report["workload"].get("reduced")
        for key, value, note in measurements(report):
            unit = "GiB" if key == "peak_gib" else "s"
            shown = f"{value:.2f} {unit}" if unit == "GiB" or value >= 0.1 else f"{value:.3f} s"
            if reduced:
                lines.append(f"| {NAMES[key]}{note} | {how(report)}, **reduced workload** | {shown} "
                             "| - | - | - | - |")
                continue
            reference, goal = REFERENCE[key], GOALS[key]
            speed_up = f"{reference / value:.1f}x" if unit == "s" else "-"
            lines.append(f"| {NAMES[key]}{note} | {how(report)} | {shown} | {reference:g} {unit} | "
                         f"{speed_up} | <= {goal:g} {unit} | {'yes' if value <= goal else 'no'} |")
    return "\n".join([f"Machine: {'; '.join(machines)}; runs of "
                      f"{', '.join(sorted({r['time'][:10] for r in reports}))}", ""] + lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.goals", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="where the benchmark wrote its JSON files")
    args = parser.parse_args(argv)
    paths = sorted(glob.glob(os.path.join(args.folder, "*.json")))
    reports = []
    for path in paths:
        try:
            with open(path) as handle:
                report = json.load(handle)
        except (OSError, ValueError) as error:     # a run stopped at its limit while writing
            print(f"note: {path} left out: {error}", file=sys.stderr)
            continue
        if isinstance(report, dict) and "stages" in report:   # a benchmark report
            reports.append(report)
    if not reports:
        print(f"error: no benchmark JSON files in {args.folder}: run python -m bench --out "
              f"{args.folder} first", file=sys.stderr)
        return 2
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
