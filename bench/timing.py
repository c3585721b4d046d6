"""How the benchmark measures: a synchronised wall clock, the two paths taking turns."""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import torch


class Clock:
    """(seconds, peak GPU GiB or None, result) of a call, synchronised on CUDA."""

    def __init__(self, device: torch.device):
        self.device, self.cuda = device, device.type == "cuda"

    def __call__(self, fn, *args, **kwargs):
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        if self.cuda:
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        return seconds, torch.cuda.max_memory_allocated(self.device) / 2 ** 30 if self.cuda else None, out


def summary(timings: list, **counts) -> dict:
    """The median seconds, every run's seconds, the peak GiB, and {name}_per_second of each count."""
    seconds = [t[0] for t in timings]
    median = statistics.median(seconds)
    return {"seconds": median, "all_seconds": seconds, "peak_gib": max((t[1] for t in timings if t[1]), default=None),
            **{f"{name}_per_second": count / median for name, count in counts.items()}}


def turn_order(names, repeat: int) -> list:
    return list(names)[::(-1) ** repeat]     # who goes first alternates: both paths see the same machine


def interleaved_runs(fns: dict, timed, args) -> dict:
    """{name: [timed(fn), ...]}: args.repeats runs of "fast", args.baseline_repeats of "plain", in turns."""
    wanted = {name: args.baseline_repeats if name == "plain" else args.repeats for name in fns}
    runs = {name: [] for name in fns}
    for repeat in range(max(wanted.values(), default=0)):
        for name in turn_order(fns, repeat):
            if len(runs[name]) < wanted[name]:
                runs[name].append(timed(fns[name]))
    return runs


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)     # stdout holds only the table


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model} ({os.cpu_count()} logical CPUs)"


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
