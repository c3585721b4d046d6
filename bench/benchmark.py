"""Speed benchmark on an MSVD-shaped workload, this code against its plain path in one process (docs/speed.md):
a markdown table on stdout and bench_results/<time>_<device>.json, rewritten after each stage.

    python -m bench --device cpu --quick         # 2 training batches, full-length decoding only
    python -m bench --stages train,beam_test --no_baseline
    python -m bench --clips 12 --feature_size 64 # a reduced workload: a smoke test"""
from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")   # no progress bar per timed batch

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

import config as config_module  # noqa: E402
from bench.stages import (DECODE_MODES, build_paths, caption_split, stage_decode, stage_scoring,  # noqa: E402
                          stage_train, stage_val_loss)
from bench.timing import Clock, device_description, load_average, log  # noqa: E402
from bench.workload import build_workload  # noqa: E402
from models.attention import ATTENTIONS  # noqa: E402
from models.searches import decode  # noqa: E402
from utils import DataError, atomic_write_bytes, pick_device, seed_everything  # noqa: E402

STAGES = ("train", "val_loss", "beam_val", "beam_test", "scoring")
FEATURE_SIZE = 2048   # ResNet152's, the MSVD preset's backbone
CUDA_ONLY = ("tf32", "cuda_graphs", "decode_graphs")


def parse_args(argv=None):
    parser = config_module.argument_parser(__doc__, prog="python -m bench")
    add = parser.add_argument
    add("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add("--stages", default=",".join(STAGES), help=f"comma-separated, from {','.join(STAGES)}")
    add("--decode_modes", default=",".join(DECODE_MODES), help="full (all steps), natural, or both")
    add("--train_batches", type=int, help="time N batches, extrapolate the epoch (default: all on a GPU, 8)")
    add("--repeats", type=int, help="timed runs of this code in the other stages (default 3 on a GPU, 1)")
    add("--baseline_repeats", type=int, default=1, help="timed runs of the baseline in those stages")
    add("--warmup", type=int, help="untimed runs before timing (default 3 on a GPU, 1 on a CPU)")
    add("--eval_batch_size", type=int, help="videos per decoding batch (default: the config's, 100)")
    add("--threads", type=int, help="torch.set_num_threads")
    add("--seed", type=int, default=1234)
    add("--no_baseline", action="store_true", help="time this code only")
    add("--quick", action="store_true", help="2 training batches, full-length decoding only, fewer baselines")
    add("--autocast", choices=["off", "bf16"], default="off", help="this code only, under bf16 (results change)")
    add("--tf32", action="store_true", help="CUDA: this code with train.tf32 and eval.tf32 (results change)")
    add("--unfused_cell", action="store_true", help="CUDA: the LSTM update as written, not the fused kernel")
    add("--attention", default="soft", choices=sorted(ATTENTIONS), help="model.attention of the model")
    add("--cuda_graphs", action="store_true", help="CUDA: this code with train.cuda_graphs")
    add("--decode_graphs", action="store_true", help="CUDA: this code with eval.cuda_graphs")
    add("--clips", type=int, help="only the first N clips of each split: a reduced, smoke-test workload")
    add("--feature_size", type=int, default=FEATURE_SIZE, help="size of the random frame features")
    add("--out", default="bench_results", help="folder of the JSON results")
    return parser.parse_args(argv)


def checked_options(args, gpu: bool) -> tuple:
    """(stages, decode modes), the device's defaults set in args; ValueError for options that cannot run."""
    stages, modes = [s for s in args.stages.split(",") if s], [m for m in args.decode_modes.split(",") if m]
    if any(s not in STAGES for s in stages) or any(m not in DECODE_MODES for m in modes):
        raise ValueError(f"stages are {STAGES} and decode modes {DECODE_MODES}")
    if args.quick:
        args.train_batches, modes = args.train_batches or 2, ["full"]
    args.train_batches = 8 if args.train_batches is None and not gpu else args.train_batches
    for option in ("train_batches", "clips", "feature_size", "repeats", "baseline_repeats"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise ValueError(f"--{option} must be at least 1")
    if not gpu and any(getattr(args, option) for option in CUDA_ONLY):
        raise ValueError(f"--{next(o for o in CUDA_ONLY if getattr(args, o))} is for CUDA devices")
    args.repeats = args.repeats or (3 if gpu else 1)
    args.warmup = (3 if gpu else 1) if args.warmup is None else args.warmup
    return stages, modes


SWITCHES = {"tf32": "this code with **TF32**", "unfused_cell": "LSTM update **without the fused CUDA kernel**",
            "cuda_graphs": "training steps as **CUDA graphs**", "decode_graphs": "decoding as **CUDA graphs**"}
# the stages whose sum is train.py's epoch, and where each keeps its seconds
EPOCH_PARTS = {"train": "epoch_seconds", "val_loss": "seconds", "beam_val_full": "seconds", "scoring": "seconds"}


def markdown(report: dict) -> str:
    """The table; also stores the whole epoch's sums in report["epoch_seconds"]."""
    s, env = report["stages"], report["environment"]
    fmt_s = lambda seconds: "-" if seconds is None else f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"
    switches = ([f"this code under **{env['autocast']} autocast** (results change)"] * (env["autocast"] != "off")
                + [said for key, said in SWITCHES.items() if env.get(key)])
    lines = [f"Device: **{env['device']}** ({env['device_type']}), torch {env['torch']}, {env['threads']} thread(s) "
             f"(OMP_WAIT_POLICY {env['omp_wait_policy'] or 'unset'}), Python {env['python']}; load average "
             f"before/after {env['load_before']} / {env['load_after']}" + "".join(f"; {said}" for said in switches),
             f"Workload: {report['workload']['summary']}",
             *(["**Incomplete**: the run stopped before its end; these are the stages it measured."]
               if report.get("complete") is False else []),
             f"Command: `{report['command']}`", "",
             "| stage | this code | baseline, same process | speed-up | throughput |", "|---|---|---|---|---|"]

    def row(label, fast, plain, throughput="-"):
        speed_up = f"{plain / fast:.2f}x" if fast and plain else "-"
        lines.append(f"| {label} | {fmt_s(fast)} | {fmt_s(plain)} | {speed_up} | {throughput} |")

    def capture_row(label, stage, seconds, eager):
        if seconds in stage:
            failure = stage["capture_failure"]
            row(label + (f" (**a capture failed**: {failure}; {eager})" if failure else ""), stage[seconds], None)

    paths = lambda stage: (s[stage]["paths"]["fast"], s[stage]["paths"].get("plain", {}))
    if "train" in s:
        f, p = paths("train")
        label = f"training epoch ({f['epoch_batches']} batches of {report['config']['loader']['batch_size']})"
        if f["extrapolated"]:
            baseline = f", baseline {fmt_s(p['per_batch_seconds'])}/batch" if p else ""
            batches = f"{f['timed_batches']} timed batch{'es' * (f['timed_batches'] > 1)}"
            label += f" **extrapolated** from {batches} ({fmt_s(f['per_batch_seconds'])}/batch{baseline})"
        row(label, f["epoch_seconds"], p.get("epoch_seconds"), f"{f['captions_per_second']:.0f} captions/s")
        capture_row(f"first training epoch, capturing the CUDA graphs of its {s['train'].get('captured_shapes')} "
                    "batch shapes", s["train"], "capture_epoch_seconds", "eager steps")
    if "val_loss" in s:
        f, p = paths("val_loss")
        row(f"validation loss ({report['workload']['val_captions']:,} val captions, teacher forced)",
            f["seconds"], p.get("seconds"), f"{f['captions_per_second']:.0f} captions/s")
    for key in (f"{stage}_{mode}" for stage in ("beam_val", "beam_test") for mode in DECODE_MODES):
        if key in s:
            d, (f, p) = s[key], paths(key)
            how = (f"full length, {d['max_len'] + 1} steps" if key.endswith("_full") else
                   f"own stopping, mean length {f['mean_length']:.1f}, max {f['max_length']}")
            same = f"; same captions {d['same_captions']}/{d['videos']}" if "same_captions" in d else ""
            row(f"beam-{d['beam_size']} {key.split('_')[1]} {d['videos']} videos ({how}{same})", f["seconds"],
                p.get("seconds"), f"{f['videos_per_second']:.1f} videos/s")
            capture_row("the same, first pass, capturing its CUDA graphs", d, "capture_seconds", "eager decoding")
    scored = "scoring" in s and "skipped" not in s["scoring"]
    if scored:
        f, p = paths("scoring")
        row(f"COCO scoring of {s['scoring']['videos']} val captions (reused scorer; baseline: "
            f"a new one, JVM start {fmt_s(f['scorer_start_seconds'])})", f["seconds"], p.get("seconds"))
    if scored and all(stage in s for stage in EPOCH_PARTS):
        parts = zip(*([path.get(key) for path in paths(stage)] for stage, key in EPOCH_PARTS.items()))
        report["epoch_seconds"] = {name: None if None in v else sum(v) for name, v in zip(("fast", "plain"), parts)}
        row("whole epoch of train.py: train + val loss + beam val (full length) + scoring"
            + (" (training **extrapolated**)" if paths("train")[0]["extrapolated"] else ""),
            *report["epoch_seconds"].values())
    peaks = report.get("peak_gib") or {}
    if peaks.get("fast") is not None:
        lines.append("| peak GPU memory (max_memory_allocated, data and model included) | " + " | ".join(
            "-" if peaks.get(name) is None else f"{peaks[name]:.2f} GiB" for name in ("fast", "plain")) + " | - | - |")
    if "scoring" in s and not scored:
        lines.append(f"\nScoring skipped: {s['scoring']['skipped']}")
    lines.append("\nBaseline: training and validation loss on the plain path (teacher forcing as the "
                 "loop over the step, no length bucketing, Adam unfused); decoding with the plain beam "
                 "search (bench/plain_decode.py); scoring with a new CaptionScorer per evaluation. "
                 "Speed-up = baseline / this code.")
    return "\n".join(lines)


def write_json(report: dict, table: str, path: str) -> None:
    """The report with its table, without the captions, written atomically."""
    stages = {name: {k: v for k, v in stage.items() if k != "captions"} for name, stage in report["stages"].items()}
    written = json.dumps(dict(report, stages=stages, table=table), indent=1, default=str)
    atomic_write_bytes(path, lambda handle: handle.write(written.encode("utf-8")))


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        device = pick_device(args.device)
        stages, modes = checked_options(args, device.type == "cuda")
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_module.build("MSVD", **{"model.attention": args.attention})
    config.train.cuda_graphs, config.eval.cuda_graphs = args.cuda_graphs, args.decode_graphs  # this code only
    config.train.tf32 = config.eval.tf32 = args.tf32
    args.eval_batch_size = args.eval_batch_size or config.loader.eval_batch_size
    load_before = load_average()
    seed_everything(args.seed)
    started = time.perf_counter()
    data = build_workload(config, seed=args.seed, feature_size=args.feature_size, device=device, clips=args.clips)
    reduced = args.clips is not None or args.feature_size != FEATURE_SIZE
    summary = (("**reduced** " if reduced else "") + f"MSVD-shaped, {len(data.train)}/{len(data.val)}/"
               f"{len(data.test)} clips, {len(data.train_targets)} training captions (mean "
               f"{data.train_targets.lengths.float().mean():.2f} tokens with <eos>), vocabulary "
               f"{len(data.vocab)}, {data.feature_size}-d random features, K={config.features.n_frames}, "
               f"batch {config.loader.batch_size}, beam {config.eval.beam_size}, attention "
               f"{config.model.attention}, built in {time.perf_counter() - started:.1f} s")
    log(summary)
    clock = Clock(device)
    model, paths = build_paths(config, data, device, not args.no_baseline, not args.unfused_cell)
    results = {}
    report = {"command": " ".join(["python -m bench"] + (sys.argv[1:] if argv is None else list(argv))),
              "time": time.strftime("%Y-%m-%d %H:%M:%S"),
              "workload": {"summary": summary, "reduced": reduced, "train_captions": len(data.train_targets),
                           "val_captions": len(data.val_targets), "vocabulary": len(data.vocab)},
              "config": config.to_dict(), "args": vars(args), "no_baseline": args.no_baseline, "stages": results}
    path = os.path.join(args.out, f"{time.strftime('%Y%m%d-%H%M%S')}_{device.type}.json")

    def save(complete: bool) -> str:
        """The report so far, written after every stage: a stopped run keeps what it measured."""
        report.update(complete=complete, total_benchmark_seconds=time.perf_counter() - started, environment={
            "device": device_description(device), "device_type": device.type, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(), "load_before": load_before,
            "load_after": load_average(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "autocast": args.autocast, **{key: bool(getattr(args, key, False)) for key in SWITCHES}})
        if device.type == "cuda":             # the largest peak of any stage
            report["peak_gib"] = {name: max((r["paths"][name]["peak_gib"] for r in results.values()
                                             if r.get("paths", {}).get(name, {}).get("peak_gib") is not None),
                                            default=None) for name in ("fast", "plain")}
        table = markdown(report)
        write_json(report, table, path)
        return table

    def run(name: str, stage, *stage_args) -> None:
        log(f"stage {name}")
        results[name] = stage(*stage_args)
        save(complete=False)

    if "train" in stages:
        run("train", stage_train, paths, data, clock, args)
    if "val_loss" in stages:
        run("val_loss", stage_val_loss, model, data, config, clock, args)
    for stage, videos in (("beam_val", data.val), ("beam_test", data.test)):
        if stage in stages:
            videos.to(device)      # the test split, as train.py moves it before decoding it
            for mode in modes:
                run(f"{stage}_{mode}", stage_decode, model, videos, data.vocab, config, clock, args, stage, mode)
    if "scoring" in stages:
        source = results.get("beam_val_natural") or results.get("beam_val_full")
        captions = (source["captions"]["fast"] if source else
                    caption_split(decode, model, data.val, data.vocab, config.eval, args.eval_batch_size))
        run("scoring", stage_scoring, data.val, captions, config, clock, args)
    print(save(complete=True))
    print(f"\n(written to {path}; benchmark ran {report['total_benchmark_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
