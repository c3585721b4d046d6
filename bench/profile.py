"""Where the time of a training batch and of a beam-search decode goes: torch.profiler over a few
batches of the benchmark's MSVD-shaped workload (bench/workload.py, the MSVD preset).

    python -m bench.profile                        # on the GPU when there is one
    python -m bench.profile --cuda_graphs          # CUDA: the eager steps and decode, then the
                                                   # graphed ones (train.cuda_graphs, eval.cuda_graphs)
    python -m bench.profile --device cpu --clips 12 --feature_size 64 --batches 1   # smoke test

For each part it prints the wall time per batch, the operators dispatched and, on a GPU, the
kernels run and the share of the wall time the GPU spent in kernels: a share far below 1 means
the GPU waits for the CPU (launch-bound), near 1 that the arithmetic itself is the cost. Then
the operators that take the most time (CPU, and GPU where there is one).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
from torch.autograd import DeviceType  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import config as config_module  # noqa: E402
from bench.timing import device_description  # noqa: E402
from distributed import NullWriter  # noqa: E402
from bench.training import pick_batches  # noqa: E402
from bench.workload import build_workload, subset_data  # noqa: E402
from models.decoding import decode  # noqa: E402
from models.sa_lstm import build_model  # noqa: E402
from train import make_optimizer, train_epoch  # noqa: E402
from training.steps import training_steps  # noqa: E402
from utils import pick_device  # noqa: E402



def profiled(device, fn, repeats: int):
    """(wall seconds per repeat, the profiler) of fn run `repeats` times after one untimed run."""
    fn()
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    sync()
    with profile(activities=activities) as prof:
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        seconds = (time.perf_counter() - started) / repeats
    return seconds, prof


def _inside_aten(event) -> bool:
    """An operator that another aten operator called (its work is counted in the outer one)."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return True
        parent = parent.cpu_parent
    return False


def summary(name: str, seconds: float, prof, per: int, unit: str, top: int, cuda: bool) -> str:
    """The lines of one profiled part: per-unit wall time, operators, kernels, GPU busy share."""
    events = prof.events()
    operators = sum(1 for e in events if e.name.startswith("aten::") and not _inside_aten(e))
    kernels = [e for e in events if e.device_type == DeviceType.CUDA]
    lines = [f"## {name}: {seconds * 1e3:.2f} ms a {unit}",
             f"- top-level aten operators dispatched (views included): {operators / per:.0f} a {unit}"]
    if cuda:
        busy = sum(e.time_range.elapsed_us() for e in kernels) / 1e6 / per   # one stream: no overlap
        lines += [f"- GPU kernels run: {len(kernels) / per:.0f} a {unit}, {busy * 1e3:.2f} ms of kernel "
                  f"time: the GPU was busy {busy / seconds:.0%} of the wall time"]
    sort = "self_device_time_total" if cuda else "self_cpu_time_total"
    lines += ["", prof.key_averages().table(sort_by=sort, row_limit=top)]
    if cuda:
        lines += [prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batches", type=int, default=5,
                        help="training batches profiled, spread over the caption lengths")
    parser.add_argument("--cuda_graphs", action="store_true",
                        help="CUDA: profile the training batches and the decode also as CUDA graphs "
                             "(train.cuda_graphs, eval.cuda_graphs)")
    parser.add_argument("--clips", type=int, default=None, help="a reduced workload (smoke tests)")
    parser.add_argument("--feature_size", type=int, default=2048)
    parser.add_argument("--top", type=int, default=15, help="rows of each operator table")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    if args.cuda_graphs and not cuda:
        print("error: --cuda_graphs is for CUDA devices", file=sys.stderr)
        return 2
    config = config_module.build("MSVD")
    data = build_workload(config, seed=args.seed, feature_size=args.feature_size, device=device,
                          clips=args.clips)
    _, picked = pick_batches(data, config, True, args.batches, args.seed)
    subset = subset_data(data, "train_targets", torch.cat(picked))
    print(f"# bench.profile on {device_description(device)}, torch {torch.__version__}; "
          f"{len(picked)} training batches of {config.loader.batch_size} captions "
          f"(mean padded length {subset.train_targets.lengths.float().mean():.1f} tokens)\n")

    for graphs in ([False, True] if args.cuda_graphs else [False]):
        torch.manual_seed(args.seed)
        config.train.cuda_graphs = graphs
        model = build_model(config, len(data.vocab), data.feature_size).to(device)
        optimizer = make_optimizer(model, config.train)
        steps = training_steps(model, optimizer, subset, config)
        epoch = lambda: train_epoch(model, optimizer, subset, config, 1, NullWriter(), 0, steps=steps)
        seconds, prof = profiled(device, epoch, 1)
        name = "training batch" + (" as CUDA graphs" if graphs else "")
        print(summary(name, seconds / len(picked), prof, len(picked), "batch", args.top, cuda), "\n")

    model.eval()
    videos = data.test.to(device)      # on the CPU until decoded, as in train.py
    rows = min(config.loader.eval_batch_size, len(videos))
    features, mask = videos.features[:rows], videos.frame_mask[:rows]
    full_length = config.eval
    full_length.min_len = full_length.max_len          # every step runs: the worst case
    steps_run = full_length.max_len + 1
    for graphs in ([False, True] if args.cuda_graphs else [False]):
        full_length.cuda_graphs = graphs               # profiled() captures in its untimed run
        seconds, prof = profiled(device, lambda: decode(model, features, mask, full_length), 1)
        print(summary(f"beam-{config.eval.beam_size} step, {rows} videos, all {steps_run} steps"
                      + (", decoded as a CUDA graph" if graphs else ""),
                      seconds / steps_run, prof, steps_run, "step", args.top, cuda), "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
