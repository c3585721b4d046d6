"""Checkpoints written while the next epoch trains.

last.pt holds the model and AMSGrad's three states (290 MiB for the MSVD model); writing and
fsyncing it took 0.3 to 0.8 s on the 2-core CPU machine, a large share of an epoch on a GPU.
A save here copies the payload's tensors to the CPU at once (the next epoch changes them in
place; a GPU's would be copied to be written anyway), then one worker thread writes the copies
in order, each atomically (models/checkpoints.save): a kill still leaves the previous file
whole. At most two saves are in flight, so at most two copies are held in host memory (an
improving epoch's best.pt and last.pt: 0.36 GiB for the MSVD model; two last.pt, 0.58 GiB, when
writes lag). wait() returns once every save is on disk and raises a failed write's error, naming
the file; train.py waits before it reads a checkpoint back and before it returns.
"""
from __future__ import annotations

import copy
import sys
from concurrent.futures import ThreadPoolExecutor

import torch

from models import checkpoints
from utils import WriteError

IN_FLIGHT = 2


def cpu_snapshot(value):
    """value with every tensor copied to the CPU and every container rebuilt: nothing the
    caller changes afterwards reaches it."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: cpu_snapshot(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(cpu_snapshot(item) for item in value)
    return copy.deepcopy(value)


def write(path: str, snapshot: dict) -> None:
    try:
        checkpoints.save(path, snapshot)
    except WriteError:                  # a full disk, say: it names the file and what is kept
        raise
    except Exception as error:          # its own message may name no file
        raise OSError(f"writing checkpoint {path} failed: {error}") from error


class BackgroundSaves:
    def __init__(self):
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self.pending = []

    def save(self, path: str, payload: dict) -> None:
        while len(self.pending) >= IN_FLIGHT:   # before the copy: at most IN_FLIGHT of them
            self._finish_oldest()
        self.pending.append(self.worker.submit(write, path, cpu_snapshot(payload)))

    def wait(self, report_only: bool = False) -> None:
        """Every save on disk; a failed write's error raised here, or with report_only (an
        error already on its way up is the one to show) printed."""
        while self.pending:
            try:
                self._finish_oldest()
            except Exception as error:
                if not report_only:
                    raise
                print(f"error: {error}", file=sys.stderr, flush=True)

    def _finish_oldest(self) -> None:
        try:
            self.pending[0].result()
        finally:                            # also on Ctrl-C while waiting: reported once
            if self.pending[0].done():
                self.pending.pop(0)
