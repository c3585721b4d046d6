"""Speed benchmark on an MSVD-shaped workload: this code against its plain path, same process.

    python -m bench                              # every stage, on the GPU when there is one
    python -m bench --device cpu --quick         # 2 training batches, full-length decoding only
    python -m bench --stages train,beam_test --no_baseline
    python -m bench --clips 12 --feature_size 64 # a reduced workload: a smoke test

docs/speed.md describes the workload, each stage and its baseline, and the output: a markdown
table on stdout and bench_results/<time>_<device>.json."""
from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")   # no progress bar per timed batch

import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

import config as config_module  # noqa: E402
from bench.eval_stages import (DECODE_MODES, caption_split, stage_decode, stage_scoring,  # noqa: E402
                               stage_val_loss)
from bench.paths import build_paths  # noqa: E402
from bench.report import environment, json_path, markdown, peak_memory, write_json  # noqa: E402
from bench.timing import Clock, load_average, log  # noqa: E402
from bench.training import stage_train  # noqa: E402
from bench.workload import build_workload  # noqa: E402
from models.attention import ATTENTIONS  # noqa: E402
from models.searches import decode  # noqa: E402
from utils import DataError, pick_device, seed_everything  # noqa: E402

STAGES = ("train", "val_loss", "beam_val", "beam_test", "scoring")
FEATURE_SIZE = 2048   # ResNet152's, the MSVD preset's backbone


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
    add("--autocast", choices=["off", "bf16"], default="off",
        help="this code (not the baseline) under bf16 autocast: the results change")
    add("--tf32", action="store_true", help="CUDA: this code with train.tf32 and eval.tf32 (results change)")
    add("--unfused_cell", action="store_true",
        help="CUDA: the LSTM update as written instead of nn.LSTMCell's fused "
             "kernel, to measure what the kernel gives")
    add("--attention", default="soft", choices=sorted(ATTENTIONS), help="model.attention of the model")
    add("--cuda_graphs", action="store_true", help="CUDA: this code with train.cuda_graphs")
    add("--decode_graphs", action="store_true", help="CUDA: this code with eval.cuda_graphs")
    add("--clips", type=int, help="only the first N clips of each split: a reduced, smoke-test workload")
    add("--feature_size", type=int, default=FEATURE_SIZE, help="size of the random frame features")
    add("--out", default="bench_results", help="folder of the JSON results")
    return parser.parse_args(argv)


def checked_options(args, gpu: bool) -> tuple:
    """(stages, decode modes), the device's defaults set in args; ValueError for options that cannot run."""
    stages = [s for s in args.stages.split(",") if s]
    modes = [m for m in args.decode_modes.split(",") if m]
    if any(s not in STAGES for s in stages) or any(m not in DECODE_MODES for m in modes):
        raise ValueError(f"stages are {STAGES} and decode modes {DECODE_MODES}")
    if args.quick:
        args.train_batches, modes = args.train_batches or 2, ["full"]
    if args.train_batches is None and not gpu:
        args.train_batches = 8
    for option in ("train_batches", "clips", "feature_size", "repeats", "baseline_repeats"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise ValueError(f"--{option} must be at least 1")
    for option in ("tf32", "cuda_graphs", "decode_graphs"):
        if getattr(args, option) and not gpu:
            raise ValueError(f"--{option} is for CUDA devices")
    args.repeats = args.repeats or (3 if gpu else 1)
    args.warmup = (3 if gpu else 1) if args.warmup is None else args.warmup
    return stages, modes


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
    config.train.cuda_graphs = args.cuda_graphs     # this code's path only (bench/paths.py)
    config.eval.cuda_graphs = args.decode_graphs    # the baseline's search never reads it
    config.train.tf32 = config.eval.tf32 = args.tf32
    args.eval_batch_size = args.eval_batch_size or config.loader.eval_batch_size
    load_before = load_average()
    seed_everything(args.seed)
    started = time.perf_counter()
    data = build_workload(config, seed=args.seed, feature_size=args.feature_size, device=device,
                          clips=args.clips)
    reduced = args.clips is not None or args.feature_size != FEATURE_SIZE
    summary = (("**reduced** " if reduced else "")
               + f"MSVD-shaped, {len(data.train)}/{len(data.val)}/{len(data.test)} clips, "
               f"{len(data.train_targets)} training captions (mean "
               f"{data.train_targets.lengths.float().mean():.2f} tokens with <eos>), vocabulary "
               f"{len(data.vocab)}, {data.feature_size}-d random features, K={config.features.n_frames}, "
               f"batch {config.loader.batch_size}, beam {config.eval.beam_size}, attention "
               f"{config.model.attention}, built in {time.perf_counter() - started:.1f} s")
    log(summary)
    clock = Clock(device)
    model, paths = build_paths(config, data, device, with_baseline=not args.no_baseline,
                               fused_cell=not args.unfused_cell)
    results = {}
    report = {
        "command": " ".join(["python -m bench"] + (sys.argv[1:] if argv is None else list(argv))),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "workload": {"summary": summary, "reduced": reduced, "train_captions": len(data.train_targets),
                     "val_captions": len(data.val_targets), "vocabulary": len(data.vocab)},
        "config": config.to_dict(), "args": vars(args), "no_baseline": args.no_baseline,
        "stages": results}
    path = json_path(args.out, device)

    def save(complete: bool) -> str:
        """The report so far, written after every stage: a stopped run keeps what it measured."""
        report.update(environment=environment(device, args, load_before), complete=complete,
                      total_benchmark_seconds=time.perf_counter() - started)
        if device.type == "cuda":
            report["peak_gib"] = peak_memory(results)
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
                run(f"{stage}_{mode}", stage_decode, model, videos, data.vocab, config, clock, args,
                    stage, mode)
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
