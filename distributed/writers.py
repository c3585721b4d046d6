"""The TensorBoard writer of ranks other than 0: one that keeps nothing."""
from __future__ import annotations


class NullWriter:
    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass
