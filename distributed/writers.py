"""What the ranks other than 0 log into under torchrun: a writer that keeps nothing (rank 0
writes the TensorBoard scalars, train.summary_writer)."""
from __future__ import annotations


class NullWriter:
    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass
