"""What the benchmark hands back: the markdown table on stdout and the JSON file."""
from __future__ import annotations

import json
import os
import platform
import time

import torch

from bench.eval_stages import DECODE_MODES
from bench.timing import device_description, load_average
from utils import atomic_write_bytes


def fmt_s(seconds) -> str:
    return "-" if seconds is None else f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def ratio(fast, plain) -> str:
    return f"{plain / fast:.2f}x" if fast and plain else "-"


SWITCHES = {"tf32": "this code with **TF32**",
            "unfused_cell": "LSTM update **without the fused CUDA kernel**",
            "cuda_graphs": "training steps as **CUDA graphs**",
            "decode_graphs": "decoding as **CUDA graphs**"}
# the stages whose sum is train.py's epoch, and where each keeps its seconds
EPOCH_PARTS = {"train": "epoch_seconds", "val_loss": "seconds", "beam_val_full": "seconds",
               "scoring": "seconds"}


def markdown(report: dict) -> str:
    """The table; also stores the whole epoch's sums in report["epoch_seconds"]."""
    s, env = report["stages"], report["environment"]
    autocast = f"this code under **{env['autocast']} autocast** (results change)"
    switches = ([autocast] * (env["autocast"] != "off")
                + [said for key, said in SWITCHES.items() if env.get(key)])
    lines = [f"Device: **{env['device']}** ({env['device_type']}), torch {env['torch']}, "
             f"{env['threads']} thread(s) (OMP_WAIT_POLICY {env['omp_wait_policy'] or 'unset'}), "
             f"Python {env['python']}; load average before/after {env['load_before']} / {env['load_after']}"
             + "".join(f"; {said}" for said in switches),
             f"Workload: {report['workload']['summary']}",
             *(["**Incomplete**: the run stopped before its end; these are the stages it measured."]
               if report.get("complete") is False else []),
             f"Command: `{report['command']}`", "",
             "| stage | this code | baseline, same process | speed-up | throughput |",
             "|---|---|---|---|---|"]

    def row(label, fast, plain, throughput="-"):
        lines.append(f"| {label} | {fmt_s(fast)} | {fmt_s(plain)} | {ratio(fast, plain)} | {throughput} |")

    def capture_row(label, stage, seconds, eager):
        failure = stage["capture_failure"]
        row(label + (f" (**a capture failed**: {failure}; {eager})" if failure else ""), stage[seconds], None)

    if "train" in s:
        f, p = s["train"]["paths"]["fast"], s["train"]["paths"].get("plain", {})
        label = f"training epoch ({f['epoch_batches']} batches of {report['config']['loader']['batch_size']})"
        if f["extrapolated"]:
            baseline = f", baseline {fmt_s(p['per_batch_seconds'])}/batch" if p else ""
            batches = f"{f['timed_batches']} timed batch{'es' * (f['timed_batches'] > 1)}"
            label += (f" **extrapolated** from {batches} ({fmt_s(f['per_batch_seconds'])}/batch{baseline})")
        row(label, f["epoch_seconds"], p.get("epoch_seconds"), f"{f['captions_per_second']:.0f} captions/s")
        if "capture_epoch_seconds" in s["train"]:
            capture_row(f"first training epoch, capturing the CUDA graphs of its "
                        f"{s['train']['captured_shapes']} batch shapes", s["train"], "capture_epoch_seconds",
                        "eager steps")
    if "val_loss" in s:
        f, p = s["val_loss"]["paths"]["fast"], s["val_loss"]["paths"].get("plain", {})
        row(f"validation loss ({report['workload']['val_captions']:,} val captions, teacher forced)",
            f["seconds"], p.get("seconds"), f"{f['captions_per_second']:.0f} captions/s")
    for key in (f"{stage}_{mode}" for stage in ("beam_val", "beam_test") for mode in DECODE_MODES):
        if key in s:
            d = s[key]
            f, p = d["paths"]["fast"], d["paths"].get("plain", {})
            how = (f"full length, {d['max_len'] + 1} steps" if key.endswith("_full") else
                   f"own stopping, mean length {f['mean_length']:.1f}, max {f['max_length']}")
            same = f"; same captions {d['same_captions']}/{d['videos']}" if "same_captions" in d else ""
            row(f"beam-{d['beam_size']} {key.split('_')[1]} {d['videos']} videos ({how}{same})", f["seconds"],
                p.get("seconds"), f"{f['videos_per_second']:.1f} videos/s")
            if "capture_seconds" in d:
                capture_row("the same, first pass, capturing its CUDA graphs", d, "capture_seconds",
                            "eager decoding")
    scored = "scoring" in s and "skipped" not in s["scoring"]
    if scored:
        f, p = s["scoring"]["paths"]["fast"], s["scoring"]["paths"].get("plain", {})
        row(f"COCO scoring of {s['scoring']['videos']} val captions (reused scorer; baseline: "
            f"a new one, JVM start {fmt_s(f['scorer_start_seconds'])})", f["seconds"], p.get("seconds"))
    if scored and all(stage in s for stage in EPOCH_PARTS):
        paths = [s[stage]["paths"] for stage in EPOCH_PARTS]
        plain = [p.get("plain", {}).get(EPOCH_PARTS[stage]) for p, stage in zip(paths, EPOCH_PARTS)]
        report["epoch_seconds"] = {
            "fast": sum(p["fast"][EPOCH_PARTS[stage]] for p, stage in zip(paths, EPOCH_PARTS)),
            "plain": sum(plain) if None not in plain else None}
        row("whole epoch of train.py: train + val loss + beam val (full length) + scoring"
            + (" (training **extrapolated**)" if s["train"]["paths"]["fast"]["extrapolated"] else ""),
            report["epoch_seconds"]["fast"], report["epoch_seconds"]["plain"])
    peaks = report.get("peak_gib")
    if peaks and peaks.get("fast") is not None:
        plain = f"{peaks['plain']:.2f} GiB" if peaks.get("plain") is not None else "-"
        lines.append(f"| peak GPU memory (max_memory_allocated, data and model included) | "
                     f"{peaks['fast']:.2f} GiB | {plain} | - | - |")
    if "scoring" in s and not scored:
        lines.append(f"\nScoring skipped: {s['scoring']['skipped']}")
    lines.append("\nBaseline: training and validation loss on the plain path (teacher forcing as the "
                 "loop over the step, no length bucketing, Adam unfused); decoding with the plain beam "
                 "search (bench/plain_decode.py); scoring with a new CaptionScorer per evaluation. "
                 "Speed-up = baseline / this code.")
    return "\n".join(lines)


def environment(device, args, load_before) -> dict:
    return {"device": device_description(device), "device_type": device.type, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "load_before": load_before, "load_after": load_average(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "autocast": args.autocast,
            **{key: bool(getattr(args, key, False)) for key in SWITCHES}}


def peak_memory(results: dict) -> dict:
    """{"fast"/"plain": the largest peak GPU memory (GiB) of any stage, or None}."""
    return {path: max((r["paths"][path]["peak_gib"] for r in results.values()
                       if r.get("paths", {}).get(path, {}).get("peak_gib") is not None), default=None)
            for path in ("fast", "plain")}


def json_path(folder: str, device) -> str:
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{time.strftime('%Y%m%d-%H%M%S')}_{device.type}.json")


def write_json(report: dict, table: str, path: str) -> None:
    """The report with its table, without the captions, written atomically."""
    stages = {name: {k: v for k, v in stage.items() if k != "captions"}
              for name, stage in report["stages"].items()}
    written = json.dumps(dict(report, stages=stages, table=table), indent=1, default=str)
    atomic_write_bytes(path, lambda handle: handle.write(written.encode("utf-8")))
