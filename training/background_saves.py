"""Checkpoints written while the next epoch trains.

last.pt holds the model and AMSGrad's three states (290 MiB for the MSVD model); writing and
fsyncing it took 0.3 to 0.8 s on the 2-core CPU machine, a large share of an epoch on a GPU.
A save here copies the payload's tensors to the CPU at once (the next epoch changes them in
place; a GPU's would be copied to be written anyway), then one worker thread writes the copies
in order, each atomically (models/checkpoints.save): a kill still leaves the previous file
whole. At most two saves are in flight, so copies never pile up. wait() returns once every save
is on disk and raises a failed write's error; train.py waits before it reads a checkpoint back
and before it returns.
"""
from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import torch

from models import checkpoints

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


class BackgroundSaves:
    def __init__(self):
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self.pending = []

    def save(self, path: str, payload: dict) -> None:
        snapshot = cpu_snapshot(payload)
        while len(self.pending) >= IN_FLIGHT:
            self.pending.pop(0).result()
        self.pending.append(self.worker.submit(checkpoints.save, path, snapshot))

    def wait(self) -> None:
        """Every save on disk; a failed write's error raised here."""
        while self.pending:
            self.pending.pop(0).result()
