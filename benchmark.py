"""Speed benchmark on an MSVD-shaped workload (issue 4): this code against a baseline, same process.

    python benchmark.py                              # every stage, on the GPU when there is one
    python benchmark.py --device cpu --train_batches 8
    python benchmark.py --quick                      # about 1-2 minutes on a 2-core CPU
    python benchmark.py --stages train,beam_test --no_baseline
    python benchmark.py --eval_batch_size 670 --tf32 # GPU options worth measuring
    python benchmark.py --autocast bf16              # this code under bf16 autocast (results change)

On a CPU that other processes also use, OpenMP threads that spin while they wait make every
multi-threaded op stall: there, --threads 1 or OMP_WAIT_POLICY=PASSIVE (set before Python
starts) was 1.7-4x faster than the default on the 2-core machine this was written on (on the
idle machine the default was best). The table's first line gives the thread count, the wait
policy and the load average.

The workload (bench/workload.py) is built in memory: MSVD's 1970 clips split 1200/100/670 with
the shipped English captions (48,774 training captions, the real vocabulary and lengths) and
random 2048-d features, 40-120 frames a clip, K = 28 sampled with loader/frames.py. The model
and training settings are config.build("MSVD") (embedding 468, hidden 512, attention 256,
batch 200, AMSGrad, clip 5, beam 5, captions of at most 30 words).

Stages, each timed after a warm-up (with torch.cuda.synchronize() on a GPU), each against a
baseline measured in the same process, interleaved with it so that both see the same machine:
- train: train.train_epoch (the real function). On a GPU the whole epoch (244 batches); with
  --train_batches N only N batches of the epoch, each through train_epoch, and the epoch time
  is EXTRAPOLATED from their mean (the table says so). The batches of the fast path are picked
  evenly over the length-sorted batches of a real epoch order, so their mean is the epoch's.
  Baseline: the plain path, model.forward_stepwise on batches without length bucketing.
- val_loss: train.validation_loss against the same on the plain path (bench/baseline.py).
- beam_val / beam_test: beam-5 captions of the 100 val / 670 test videos, as
  evaluation.caption_videos makes them, in two modes: "full length" (min_len = max_len, every
  hypothesis runs all 31 steps: the reference implementation always runs them, and it is the
  worst case of ours) and "own stopping" (the evaluation settings; how soon beam search stops
  depends on the model, here a barely trained one). Baseline: the beam search as committed
  before this benchmark (bench/baseline.py); the table says whether the captions are the same.
- scoring: COCO metrics of the val captions with a CaptionScorer made once and reused, against
  a scorer made anew for each evaluation (JVM start included), as older code did.
- epoch: the sum train + val_loss + beam_val (full length) + scoring, what train.py spends on
  one epoch.

Results go to stdout as a markdown table and to bench_results/<time>_<device>.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")   # train_epoch's progress bar, once per timed batch

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

import config as config_module  # noqa: E402
from bench.baseline import committed_beam_search, plain_validation_loss  # noqa: E402
from bench.workload import build_workload  # noqa: E402
from loader.batches import caption_batch_order, video_batches  # noqa: E402
from loader.captions import CaptionTargets  # noqa: E402
from models.decoding import decode  # noqa: E402
from models.sa_lstm import build_model  # noqa: E402
from train import make_optimizer, train_epoch, validation_loss  # noqa: E402
from utils import DataError, pick_device, seed_everything  # noqa: E402

STAGES = ("train", "val_loss", "beam_val", "beam_test", "scoring")
DECODE_MODES = ("full", "natural")
# hobincar/SA-LSTM on one H100, as measured for issue 4, and the goals on an H100 (s).
REFERENCE = {"train": 49.3, "val_loss": 2.6, "beam_val_full": 9.9, "beam_test_full": 61.7,
             "peak_gib": 3.0}
GOALS = {"train": "<= 2 s", "beam_test_full": "<= 0.5 s", "epoch": "<= 5 s",
         "peak_gib": "<= 3.0 GiB"}


class _NoWriter:
    """train_epoch logs to tensorboard; the benchmark does not."""

    def add_scalar(self, *args, **kwargs):
        pass


# ------------------------------------------------------------------------------ timing
class Clock:
    """Wall time of a call, synchronised on CUDA, with the call's peak GPU memory."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def __call__(self, fn, *args, **kwargs):
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.sync()
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.sync()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(self.device) / 2 ** 30 if self.cuda else None
        return seconds, peak, out


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} logical CPUs)"


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ------------------------------------------------------------------------------ stages
def fast_scope(args, device):
    """Where this code runs: plain float32, or under bf16 autocast with --autocast bf16."""
    if args.autocast == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def in_scope(args, device, fn):
    def scoped(*a, **k):
        with fast_scope(args, device):
            return fn(*a, **k)
    return scoped


def wants_baseline(args, stage: str) -> bool:
    """--quick leaves out the slowest baselines (validation loss, decoding of the test set)."""
    return not args.no_baseline and not (args.quick and stage in ("val_loss", "beam_test"))


def subset_data(data, targets_name: str, rows: torch.Tensor):
    """data with only the given caption rows as its training (or validation) targets."""
    targets = getattr(data, targets_name)
    rows = rows.to(targets.tokens.device)
    subset = CaptionTargets(targets.tokens[rows], targets.lengths[rows], targets.video_index[rows])
    return dataclasses.replace(data, **{targets_name: subset})


def pick_batches(data, config, bucket: bool, count: int, seed: int) -> tuple:
    """(the first epoch's batch order as train_epoch draws it, the count batches to time).

    Only full batches are picked. Bucketed batches hold one caption length each, so their cost
    differs a lot: they are picked evenly spaced over the length-sorted batches. Unbucketed ones
    all look alike: the first ones of the random order."""
    generator = torch.Generator().manual_seed(seed * 1000 + 1)
    order = caption_batch_order(data.train_targets, config.loader.batch_size, generator, bucket)
    full = [rows for rows in order if len(rows) == config.loader.batch_size]
    count = min(count, len(full))
    if not bucket:
        return order, full[:count]
    lengths = data.train_targets.lengths.cpu()
    full.sort(key=lambda rows: int(lengths[rows].max()))
    return order, [full[min(len(full) - 1, int((i + 0.5) * len(full) / count))] for i in range(count)]


def padded_tokens(data, batches) -> int:
    lengths = data.train_targets.lengths.cpu()
    return sum(len(rows) * int(lengths[rows].max()) for rows in batches)


def stage_train(paths, data, clock, args) -> dict:
    """paths: {"fast"/"plain": (model, optimizer, config)}. Times train.train_epoch."""
    result = {"paths": {}}
    plans = {}
    for name, (model, optimizer, config) in paths.items():
        bucket = config.loader.bucket_by_length
        order, picked = pick_batches(data, config, bucket, args.train_batches or 10 ** 9, args.seed)
        plans[name] = (order, picked)
    whole_epoch = args.train_batches is None or args.train_batches >= len(plans["fast"][0])
    step = {name: 0 for name in paths}

    def one(name, rows_list, epoch):
        model, optimizer, config = paths[name]
        subset = data if rows_list is None else subset_data(data, "train_targets", torch.cat(rows_list))
        run = in_scope(args, clock.device, train_epoch) if name == "fast" else train_epoch
        seconds, peak, (loss, step[name]) = clock(run, model, optimizer, subset, config,
                                                  epoch, _NoWriter(), step[name])
        return seconds, peak, loss

    # Warm-up: one batch per path (allocator, BLAS/cuBLAS set-up, autograd graph caches).
    for name, (order, picked) in plans.items():
        for _ in range(args.warmup):
            one(name, [picked[len(picked) // 2]], 1)
    for name in paths:
        result["paths"][name] = {"batch_seconds": [], "peak_gib": None}
    if whole_epoch:
        for name, (order, _) in plans.items():
            log(f"train: whole epoch on the {name} path ({len(order)} batches)")
            seconds, peak, loss = one(name, None, 1)
            r = result["paths"][name]
            r.update(measured_seconds=seconds, epoch_seconds=seconds, extrapolated=False,
                     per_batch_seconds=seconds / len(order), peak_gib=peak, loss=loss,
                     timed_batches=len(order), epoch_batches=len(order),
                     padded_tokens=padded_tokens(data, order))
    else:
        names = list(paths)
        count = len(plans["fast"][1])
        for i in range(count):
            for name in (names if i % 2 == 0 else names[::-1]):   # alternate who goes first
                seconds, peak, loss = one(name, [plans[name][1][i]], 1)
                r = result["paths"][name]
                r["batch_seconds"].append(seconds)
                r["peak_gib"] = max(filter(None, [r["peak_gib"], peak]), default=None)
            log(f"train: batch {i + 1}/{count}: " + ", ".join(
                f"{n} {result['paths'][n]['batch_seconds'][-1]:.2f} s" for n in names))
        for name, (order, picked) in plans.items():
            r = result["paths"][name]
            mean = statistics.mean(r["batch_seconds"])
            r.update(measured_seconds=sum(r["batch_seconds"]), per_batch_seconds=mean,
                     epoch_seconds=mean * len(order), extrapolated=True,
                     timed_batches=len(picked), epoch_batches=len(order),
                     timed_padded_length=padded_tokens(data, picked) / sum(len(rows) for rows in picked),
                     epoch_padded_length=padded_tokens(data, order) / len(data.train_targets))
    for name, r in result["paths"].items():
        r["captions_per_second"] = len(data.train_targets) / r["epoch_seconds"]
    return result


def stage_val_loss(model, data, config, clock, args) -> dict:
    fns = {"fast": in_scope(args, clock.device, lambda d: validation_loss(model, d, config)),
           "plain": lambda d: plain_validation_loss(model, d, config)}
    if not wants_baseline(args, "val_loss"):
        fns.pop("plain")
    warm_rows = torch.arange(min(len(data.val_targets), config.loader.eval_batch_size))
    warm = subset_data(data, "val_targets", warm_rows)
    for fn in fns.values():
        for _ in range(args.warmup):
            fn(warm)
    runs = {name: [] for name in fns}
    for repeat in range(args.repeats):
        for name in (list(fns) if repeat % 2 == 0 else list(fns)[::-1]):
            runs[name].append(clock(fns[name], data))
    result = {"paths": {}}
    for name, timings in runs.items():
        seconds = statistics.median(t[0] for t in timings)
        result["paths"][name] = {"seconds": seconds, "all_seconds": [t[0] for t in timings],
                                 "peak_gib": max(filter(None, [t[1] for t in timings]), default=None),
                                 "loss": timings[0][2],
                                 "captions_per_second": len(data.val_targets) / seconds}
    return result


@torch.no_grad()
def caption_split(decoder, model, videos, vocab, eval_config, batch_size: int) -> list:
    """evaluation.caption_videos with the decoder as a parameter: [(caption, log_prob, length)]."""
    model.eval()
    out = []
    for rows, features, mask in video_batches(videos, batch_size):
        result = decoder(model, features, mask, eval_config)
        tokens, lengths, log_probs = result.tokens.cpu(), result.lengths.cpu(), result.log_probs.cpu()
        result.attention.cpu()
        for j in range(len(rows)):
            out.append((vocab.decode(tokens[j]), float(log_probs[j]), int(lengths[j])))
    return out


def committed_decode(model, features, mask, eval_config):
    return committed_beam_search(model, features, mask, eval_config.beam_size, eval_config.max_len,
                                 eval_config.min_len, eval_config.length_penalty)


def stage_decode(model, videos, vocab, config, clock, args, mode: str) -> dict:
    eval_config = copy.deepcopy(config.eval)
    if mode == "full":
        eval_config.min_len = eval_config.max_len   # <eos> only at the end: all steps run
    fns = {"fast": in_scope(args, clock.device, decode), "plain": committed_decode}
    if not wants_baseline(args, "beam_test" if len(videos) > args.eval_batch_size else "beam_val"):
        fns.pop("plain")
    warm = videos.subset(range(min(len(videos), 8)))
    short = copy.deepcopy(eval_config)
    short.max_len = short.min_len = min(eval_config.max_len, 3)
    for fn in fns.values():
        for _ in range(args.warmup):
            caption_split(fn, model, warm, vocab, short, args.eval_batch_size)
    runs = {name: [] for name in fns}
    for repeat in range(args.repeats):
        for name in (list(fns) if repeat % 2 == 0 else list(fns)[::-1]):
            runs[name].append(clock(caption_split, fns[name], model, videos, vocab, eval_config,
                                    args.eval_batch_size))
    result = {"mode": mode, "videos": len(videos), "beam_size": eval_config.beam_size,
              "min_len": eval_config.min_len, "max_len": eval_config.max_len, "paths": {}}
    for name, timings in runs.items():
        seconds = statistics.median(t[0] for t in timings)
        captions = timings[0][2]
        result["paths"][name] = {
            "seconds": seconds, "all_seconds": [t[0] for t in timings],
            "peak_gib": max(filter(None, [t[1] for t in timings]), default=None),
            "videos_per_second": len(videos) / seconds,
            "mean_length": statistics.mean(c[2] for c in captions),
            "max_length": max(c[2] for c in captions)}
        result.setdefault("captions", {})[name] = captions
    if "plain" in runs:
        fast, plain = result["captions"]["fast"], result["captions"]["plain"]
        result["same_captions"] = sum(a[0] == b[0] for a, b in zip(fast, plain))
        result["max_log_prob_difference"] = max(abs(a[1] - b[1]) for a, b in zip(fast, plain))
    return result


def stage_scoring(videos, captions: list, config, clock, args) -> dict:
    from utils import CaptionScorer, MetricError
    references = dict(zip(videos.video_ids, videos.references))
    hypotheses = {vid: c[0] for vid, c in zip(videos.video_ids, captions)}
    result = {"videos": len(videos), "paths": {}}
    try:
        start_seconds, _, scorer = clock(CaptionScorer, config.eval.metrics)
    except MetricError as error:
        return {"skipped": f"no COCO scoring: {error}"}
    try:
        scorer.score(references, hypotheses)                        # warm-up
        reused = [clock(scorer.score, references, hypotheses) for _ in range(args.repeats)]
    finally:
        scorer.close()

    def fresh():
        with CaptionScorer(config.eval.metrics) as new:
            return new.score(references, hypotheses)

    seconds = statistics.median(t[0] for t in reused)
    result["paths"]["fast"] = {"seconds": seconds, "all_seconds": [t[0] for t in reused],
                               "scorer_start_seconds": start_seconds,
                               "CIDEr": reused[0][2]["CIDEr"]}
    if not args.no_baseline:
        made = [clock(fresh) for _ in range(args.repeats)]
        result["paths"]["plain"] = {"seconds": statistics.median(t[0] for t in made),
                                    "all_seconds": [t[0] for t in made]}
    return result


# ------------------------------------------------------------------------------ report
def fmt_s(seconds) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def ratio(fast, plain) -> str:
    return f"{plain / fast:.2f}x" if fast and plain else "-"


def markdown(report: dict) -> str:
    s, env = report["stages"], report["environment"]
    lines = [f"Device: **{env['device']}** ({env['device_type']}), torch {env['torch']}, "
             f"{env['threads']} thread(s) (OMP_WAIT_POLICY {env['omp_wait_policy'] or 'unset'}), "
             f"Python {env['python']}; load average before/after "
             f"{env['load_before']} / {env['load_after']}"
             + (f"; this code under **{env['autocast']} autocast** (results change)"
                if env["autocast"] != "off" else "") + ("; TF32 allowed" if env["tf32"] else ""),
             f"Workload: {report['workload']['summary']}",
             f"Command: `{report['command']}`", "",
             "| stage | this code | baseline, same process | speed-up | throughput | "
             "reference (H100) | goal (H100) |",
             "|---|---|---|---|---|---|---|"]

    def row(label, fast, plain, throughput, key=None, note=""):
        ref = REFERENCE.get(key)
        lines.append(f"| {label}{note} | {fmt_s(fast)} | {fmt_s(plain)} | {ratio(fast, plain)} | "
                     f"{throughput} | {fmt_s(ref) if ref else '-'} | {GOALS.get(key, '-')} |")

    epoch_fast, epoch_plain, complete = 0.0, [], True   # baseline: None where it was not run
    if "train" in s:
        f, p = s["train"]["paths"]["fast"], s["train"]["paths"].get("plain", {})
        label = "training epoch (244 batches of 200)"
        note = ""
        if f["extrapolated"]:
            per_batch = f"{fmt_s(f['per_batch_seconds'])}/batch" + (
                f", baseline {fmt_s(p['per_batch_seconds'])}/batch" if p else "")
            note = (f" **extrapolated** from {f['timed_batches']} timed "
                    f"batch{'es' if f['timed_batches'] > 1 else ''} ({per_batch})")
        row(label, f["epoch_seconds"], p.get("epoch_seconds"),
            f"{f['captions_per_second']:.0f} captions/s", "train", note)
        epoch_fast += f["epoch_seconds"]
        epoch_plain.append(p.get("epoch_seconds"))
    else:
        complete = False
    if "val_loss" in s:
        f, p = s["val_loss"]["paths"]["fast"], s["val_loss"]["paths"].get("plain", {})
        row("validation loss (4,290 val captions, teacher forced)", f["seconds"], p.get("seconds"),
            f"{f['captions_per_second']:.0f} captions/s", "val_loss")
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
            how = "full length, 31 steps" if mode == "full" else (
                f"own stopping, mean length {f['mean_length']:.1f}, max {f['max_length']}")
            same = (f"; same captions {d['same_captions']}/{d['videos']}" if "same_captions" in d else "")
            row(f"beam-{d['beam_size']} {what} {d['videos']} videos ({how}{same})", f["seconds"],
                p.get("seconds"), f"{f['videos_per_second']:.1f} videos/s", key)
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
        lines.append(f"| peak GPU memory (max_memory_allocated, data and model included) | "
                     f"{peaks['fast']:.2f} GiB | {plain} | - | - | 3.0 GiB | <= 3.0 GiB |")
    if "scoring" in s and "skipped" in s["scoring"]:
        lines.append(f"\nScoring skipped: {s['scoring']['skipped']}")
    lines.append("\nBaseline: training and validation loss on the plain path (forward_stepwise, "
                 "no length bucketing); decoding with the beam search as committed in d527d58; "
                 "scoring with a new CaptionScorer per evaluation. Speed-up = baseline / this code.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, from {','.join(STAGES)}")
    parser.add_argument("--decode_modes", default=",".join(DECODE_MODES),
                        help="full (all 31 steps), natural (the model's own stopping), or both")
    parser.add_argument("--train_batches", type=int, default=None,
                        help="time this many batches and extrapolate the epoch (default: the "
                             "whole epoch on a GPU, 8 batches on a CPU)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs of each other stage, median reported (default 3 on a "
                             "GPU, 1 on a CPU)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed runs before timing (default 3 on a GPU, 1 on a CPU)")
    parser.add_argument("--eval_batch_size", type=int, default=None,
                        help="videos per decoding batch (default: the config's, 100)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no_baseline", action="store_true", help="time this code only")
    parser.add_argument("--quick", action="store_true",
                        help="2 training batches, full-length decoding only, no baseline for "
                             "the validation loss and the test set (about 2 minutes on a 2-core CPU)")
    parser.add_argument("--autocast", choices=["off", "bf16"], default="off",
                        help="run this code (not the baseline) under bf16 autocast: faster where "
                             "the hardware has bf16 units, but the results change; off by default")
    parser.add_argument("--tf32", action="store_true",
                        help="CUDA only: allow TF32 matrix products (changes results slightly)")
    parser.add_argument("--out", default="bench_results", help="folder of the JSON results")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        device = pick_device(args.device)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    gpu = device.type == "cuda"
    stages = [s for s in args.stages.split(",") if s]
    unknown = [s for s in stages if s not in STAGES]
    modes = [m for m in args.decode_modes.split(",") if m]
    if unknown or any(m not in DECODE_MODES for m in modes):
        print(f"error: stages are {STAGES} and decode modes {DECODE_MODES}", file=sys.stderr)
        return 2
    if args.quick:
        args.train_batches = args.train_batches or 2
        modes = ["full"]
    if args.train_batches is None and not gpu:
        args.train_batches = 8
    if args.train_batches is not None and args.train_batches < 1:
        print("error: --train_batches must be at least 1", file=sys.stderr)
        return 2
    args.repeats = args.repeats or (3 if gpu else 1)
    args.warmup = args.warmup if args.warmup is not None else (3 if gpu else 1)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tf32:
        if not gpu:
            print("error: --tf32 is for CUDA devices", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    config = config_module.build("MSVD")
    args.eval_batch_size = args.eval_batch_size or config.loader.eval_batch_size
    load_before = load_average()
    seed_everything(args.seed)
    started = time.perf_counter()
    data = build_workload(config, seed=args.seed, device=device)
    lengths = data.train_targets.lengths.float()
    summary = (f"MSVD-shaped, {len(data.train)}/{len(data.val)}/{len(data.test)} clips, "
               f"{len(data.train_targets)} training captions (mean {lengths.mean():.2f} tokens with "
               f"<eos>), vocabulary {len(data.vocab)}, {data.feature_size}-d random features, "
               f"K={config.features.n_frames}, batch {config.loader.batch_size}, "
               f"beam {config.eval.beam_size}, built in {time.perf_counter() - started:.1f} s")
    log(summary)
    clock = Clock(device)

    model = build_model(config, len(data.vocab), data.feature_size).to(device)
    plain_model = copy.deepcopy(model)
    plain_model.fast_teacher_forcing = False
    plain_config = copy.deepcopy(config)
    plain_config.loader.bucket_by_length = False
    paths = {"fast": (model, make_optimizer(model, config.train), config)}
    if not args.no_baseline:
        paths["plain"] = (plain_model, make_optimizer(plain_model, plain_config.train), plain_config)

    results = {}
    if "train" in stages:
        log("stage train")
        results["train"] = stage_train(paths, data, clock, args)
    if "val_loss" in stages:
        log("stage val_loss")
        results["val_loss"] = stage_val_loss(model, data, config, clock, args)
    for stage, videos in (("beam_val", data.val), ("beam_test", data.test)):
        if stage in stages:
            for mode in modes:
                log(f"stage {stage} ({mode})")
                results[f"{stage}_{mode}"] = stage_decode(model, videos, data.vocab, config,
                                                          clock, args, mode)
    if "scoring" in stages:
        log("stage scoring")
        source = results.get("beam_val_natural") or results.get("beam_val_full")
        captions = (source["captions"]["fast"] if source else
                    caption_split(decode, model, data.val, data.vocab, config.eval,
                                  args.eval_batch_size))
        results["scoring"] = stage_scoring(data.val, captions, config, clock, args)

    report = {
        "command": " ".join(["python benchmark.py"] + (sys.argv[1:] if argv is None else list(argv))),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "environment": {"device": device_description(device), "device_type": device.type,
                        "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "python": platform.python_version(), "load_before": load_before,
                        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                        "load_after": load_average(), "tf32": bool(args.tf32),
                        "autocast": args.autocast},
        "workload": {"summary": summary, "train_captions": len(data.train_targets),
                     "val_captions": len(data.val_targets), "vocabulary": len(data.vocab)},
        "config": config.to_dict(), "args": vars(args), "no_baseline": args.no_baseline,
        "stages": results, "total_benchmark_seconds": time.perf_counter() - started,
    }
    if gpu:
        report["peak_gib"] = {}
        for path in ("fast", "plain"):
            values = [r["paths"][path]["peak_gib"] for r in results.values()
                      if path in r.get("paths", {}) and r["paths"][path].get("peak_gib") is not None]
            report["peak_gib"][path] = max(values) if values else None
    table = markdown(report)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}_{device.type}.json"
    for stage in results.values():          # captions are for the comparison, not the file
        stage.pop("captions", None)
    report["table"] = table
    with open(os.path.join(args.out, name), "w") as handle:
        json.dump(report, handle, indent=1, default=str)
    print(f"\n(written to {os.path.join(args.out, name)}; benchmark ran "
          f"{report['total_benchmark_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
