"""Checkpoints written by one worker thread while the next epoch trains: each save copies the
payload to the CPU at once and is written atomically, so a kill still leaves the previous file whole."""
from __future__ import annotations

import copy
import sys
from concurrent.futures import ThreadPoolExecutor

import torch

from models import checkpoints
from utils import WriteError

IN_FLIGHT = 2


def cpu_snapshot(value):
    """value copied to the CPU, containers rebuilt: later changes by the caller never reach it."""
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
        """Every save on disk; a failed write raises, or is printed with report_only (an error on its way up)."""
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
