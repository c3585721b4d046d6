"""What the benchmark hands back: the markdown table on stdout and the JSON file."""
from __future__ import annotations

import json
import os
import platform
import time

import torch

from bench.decoding import DECODE_MODES
from bench.timing import device_description, load_average
from utils import atomic_write_bytes

# hobincar/SA-LSTM on one H100, as measured for issue 4, and the goals on an H100 (s).
REFERENCE = {"train": 49.3, "val_loss": 2.6, "beam_val_full": 9.9, "beam_test_full": 61.7,
             "peak_gib": 3.0}
GOALS = {"train": "<= 2 s", "beam_test_full": "<= 0.5 s", "epoch": "<= 5 s",
         "peak_gib": "<= 3.0 GiB"}


def fmt_s(seconds) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def ratio(fast, plain) -> str:
    return f"{plain / fast:.2f}x" if fast and plain else "-"


def markdown(report: dict) -> str:
    """The table. Also stores the whole epoch's sums in report["epoch_seconds"] (for the JSON)."""
    s, env = report["stages"], report["environment"]
    lines = [f"Device: **{env['device']}** ({env['device_type']}), torch {env['torch']}, "
             f"{env['threads']} thread(s) (OMP_WAIT_POLICY {env['omp_wait_policy'] or 'unset'}), "
             f"Python {env['python']}; load average before/after "
             f"{env['load_before']} / {env['load_after']}"
             + (f"; this code under **{env['autocast']} autocast** (results change)"
                if env["autocast"] != "off" else "") + ("; this code with **TF32**" if env["tf32"] else "")
             + ("; LSTM update **without the fused CUDA kernel**" if env.get("unfused_cell") else "")
             + ("; training steps as **CUDA graphs**" if env.get("cuda_graphs") else "")
             + ("; decoding as **CUDA graphs**" if env.get("decode_graphs") else ""),
             f"Workload: {report['workload']['summary']}",
             *(["**Incomplete**: the run stopped before its end; these are the stages it measured."]
               if report.get("complete") is False else []),
             f"Command: `{report['command']}`", "",
             "| stage | this code | baseline, same process | speed-up | throughput | "
             "reference (H100) | goal (H100) |",
             "|---|---|---|---|---|---|---|"]

    # The H100 reference and goals are for the workload, not for a reduced one (--clips).
    reference, goals = ({}, {}) if report["workload"].get("reduced") else (REFERENCE, GOALS)

    def row(label, fast, plain, throughput, key=None, note=""):
        ref = reference.get(key)
        lines.append(f"| {label}{note} | {fmt_s(fast)} | {fmt_s(plain)} | {ratio(fast, plain)} | "
                     f"{throughput} | {fmt_s(ref) if ref else '-'} | {goals.get(key, '-')} |")

    epoch_fast, epoch_plain, complete = 0.0, [], True   # baseline: None where it was not run
    if "train" in s:
        f, p = s["train"]["paths"]["fast"], s["train"]["paths"].get("plain", {})
        label = f"training epoch ({f['epoch_batches']} batches of {report['config']['loader']['batch_size']})"
        note = ""
        if f["extrapolated"]:
            per_batch = f"{fmt_s(f['per_batch_seconds'])}/batch" + (
                f", baseline {fmt_s(p['per_batch_seconds'])}/batch" if p else "")
            note = (f" **extrapolated** from {f['timed_batches']} timed "
                    f"batch{'es' if f['timed_batches'] > 1 else ''} ({per_batch})")
        row(label, f["epoch_seconds"], p.get("epoch_seconds"),
            f"{f['captions_per_second']:.0f} captions/s", "train", note)
        if "capture_epoch_seconds" in s["train"]:
            failure = s["train"]["capture_failure"]
            row(f"first training epoch, capturing the CUDA graphs of its {s['train']['captured_shapes']} "
                "batch shapes" + (f" (**a capture failed**: {failure}; eager steps)" if failure else ""),
                s["train"]["capture_epoch_seconds"], None, "-")
        epoch_fast += f["epoch_seconds"]
        epoch_plain.append(p.get("epoch_seconds"))
    else:
        complete = False
    if "val_loss" in s:
        f, p = s["val_loss"]["paths"]["fast"], s["val_loss"]["paths"].get("plain", {})
        row(f"validation loss ({report['workload']['val_captions']:,} val captions, teacher forced)",
            f["seconds"], p.get("seconds"), f"{f['captions_per_second']:.0f} captions/s", "val_loss")
        epoch_fast += f["seconds"]
        epoch_plain.append(p.get("seconds"))
    else:
        complete = False
    for stage, what in (("beam_val", "val"), ("beam_test", "test")):
        for mode in DECODE_MODES:
            key = f"{stage}_{mode}"
            if key not in s:
                continue
            d = s[key]
            f, p = d["paths"]["fast"], d["paths"].get("plain", {})
            how = f"full length, {d['max_len'] + 1} steps" if mode == "full" else (
                f"own stopping, mean length {f['mean_length']:.1f}, max {f['max_length']}")
            same = (f"; same captions {d['same_captions']}/{d['videos']}" if "same_captions" in d else "")
            row(f"beam-{d['beam_size']} {what} {d['videos']} videos ({how}{same})", f["seconds"],
                p.get("seconds"), f"{f['videos_per_second']:.1f} videos/s", key)
            if "capture_seconds" in d:
                failure = d["capture_failure"]
                row("the same, first pass, capturing its CUDA graphs"
                    + (f" (**a capture failed**: {failure}; eager decoding)" if failure else ""),
                    d["capture_seconds"], None, "-")
    if "beam_val_full" in s:
        epoch_fast += s["beam_val_full"]["paths"]["fast"]["seconds"]
        epoch_plain.append(s["beam_val_full"]["paths"].get("plain", {}).get("seconds"))
    else:
        complete = False
    if "scoring" in s and "skipped" not in s["scoring"]:
        f, p = s["scoring"]["paths"]["fast"], s["scoring"]["paths"].get("plain", {})
        row(f"COCO scoring of {s['scoring']['videos']} val captions (reused scorer; baseline: "
            f"a new one, JVM start {fmt_s(f['scorer_start_seconds'])})", f["seconds"],
            p.get("seconds"), "-")
        epoch_fast += f["seconds"]
        epoch_plain.append(p.get("seconds"))
    else:
        complete = False
    if complete:
        epoch_plain = sum(epoch_plain) if all(x is not None for x in epoch_plain) else None
        extrapolated = s["train"]["paths"]["fast"]["extrapolated"]
        row("whole epoch of train.py: train + val loss + beam val (full length) + scoring"
            + (" (training **extrapolated**)" if extrapolated else ""),
            epoch_fast, epoch_plain,
            "-", "epoch")
        report["epoch_seconds"] = {"fast": epoch_fast, "plain": epoch_plain}
    peaks = report.get("peak_gib")
    if peaks and peaks.get("fast") is not None:
        plain = f"{peaks['plain']:.2f} GiB" if peaks.get("plain") is not None else "-"
        ref = f"{reference['peak_gib']:.1f} GiB" if "peak_gib" in reference else "-"
        lines.append(f"| peak GPU memory (max_memory_allocated, data and model included) | "
                     f"{peaks['fast']:.2f} GiB | {plain} | - | - | {ref} | {goals.get('peak_gib', '-')} |")
    if "scoring" in s and "skipped" in s["scoring"]:
        lines.append(f"\nScoring skipped: {s['scoring']['skipped']}")
    lines.append("\nBaseline: training and validation loss on the plain path (train.fast_teacher_forcing "
                 "false, no length bucketing, Adam unfused); decoding with the beam search as committed in "
                 "d527d58 (tests/reference.py); "
                 "scoring with a new CaptionScorer per evaluation. Speed-up = baseline / this code.")
    return "\n".join(lines)


def environment(device, args, load_before) -> dict:
    """Where the numbers come from: the device, the thread set-up and the machine's load."""
    return {"device": device_description(device), "device_type": device.type,
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "load_before": load_before,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "load_after": load_average(), "tf32": bool(args.tf32),
            "autocast": args.autocast, "unfused_cell": bool(getattr(args, "unfused_cell", False)),
            "cuda_graphs": bool(getattr(args, "cuda_graphs", False)),
            "decode_graphs": bool(getattr(args, "decode_graphs", False))}


def peak_memory(results: dict) -> dict:
    """{"fast"/"plain": the largest peak GPU memory (GiB) of any stage, None where not measured}."""
    peaks = {}
    for path in ("fast", "plain"):
        values = [r["paths"][path]["peak_gib"] for r in results.values()
                  if path in r.get("paths", {}) and r["paths"][path].get("peak_gib") is not None]
        peaks[path] = max(values) if values else None
    return peaks


def json_path(folder: str, device) -> str:
    """bench_results/<time>_<device>.json (the folder made here)."""
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{time.strftime('%Y%m%d-%H%M%S')}_{device.type}.json")


def write_json(report: dict, table: str, path: str) -> None:
    """The report with its table and without the captions (they are for the comparison, not the
    file), replacing the file at once: a run killed while writing leaves the last whole one."""
    stages = {name: {k: v for k, v in stage.items() if k != "captions"}
              for name, stage in report["stages"].items()}
    written = json.dumps(dict(report, stages=stages, table=table), indent=1, default=str)
    atomic_write_bytes(path, lambda handle: handle.write(written.encode("utf-8")))
