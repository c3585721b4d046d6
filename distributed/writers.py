"""TensorBoard on rank 0 only: the other ranks log into a writer that keeps nothing."""
from __future__ import annotations

from distributed.process_group import Ranks


class NullWriter:
    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def summary_writer(ranks: Ranks, run_dir: str):
    if not ranks.is_main:
        return NullWriter()
    from tensorboardX import SummaryWriter
    return SummaryWriter(run_dir)
