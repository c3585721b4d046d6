"""A second device on a CPU-only machine, for tests that tensors of two devices never meet.

CUDA refuses most ops whose tensors live on two devices ("Expected all tensors to be on the
same device", "indices should be either on cpu or on the same device as the indexed tensor"),
but a CPU-only test run never sees a second device. Here the `meta` device (shapes, no data)
stands in for the GPU, and DeviceMeetings, a TorchDispatchMode, checks every aten op against
CUDA's rules, since meta itself lets a CPU tensor be indexed with meta indices:

- an op's tensors must all be on one device, except CPU 0-dim tensors read as scalars (which
  CUDA accepts; an in-place op cannot write a GPU result into one) and the copies that move
  tensors between devices (.to, .cpu, copy_);
- indexing: the indices may be on the CPU or on the indexed tensor's device, never elsewhere.

Meta tensors hold no values, so reading one (float(loss), bool(done.all()), int(x.max())),
copying one to the CPU and boolean-mask indexing (which needs the values to know its size) get
stand-in answers: False, 1, 0.5 (a copy: filled with them) and an empty selection. The code then
runs every op of its loops with the right shapes and devices; its numbers mean nothing and
tests must not check them. With SALSTM_TEST_DEVICE=cuda the tests use the GPU itself instead.
"""
from __future__ import annotations

import contextlib
import os

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

GPU_STAND_IN = torch.device("meta")
# SALSTM_TEST_DEVICE=cuda (on a GPU machine: docs/speed.md): the tests of devices
# run on the GPU itself, and the tests that train use it; unset: the stand-in, and train.device
# auto (the GPU when there is one).
_ASKED = os.environ.get("SALSTM_TEST_DEVICE")
# (a tensor's device names its index: cuda:0, which torch.device("cuda") does not equal)
SECOND_DEVICE = torch.empty(0, device=_ASKED).device if _ASKED and _ASKED != "cpu" else GPU_STAND_IN
TRAIN_DEVICE = _ASKED or "auto"
aten = torch.ops.aten
_MOVES = {aten._to_copy.default, aten.copy_.default, aten._copy_from.default,
          aten._copy_from_and_resize.default, aten.lift_fresh.default}
_INDEXING = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default,
             aten._index_put_impl_.default}
_STAND_IN_VALUES = {torch.bool: False, "integer": 1, "float": 0.5}


class DeviceMeetings(TorchDispatchMode):
    """Records (op name, devices) of every op that CUDA would refuse; see the module doc."""

    def __init__(self):
        super().__init__()
        self.meetings = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in _MOVES:
            self._check(func, args, kwargs)
        if func is aten._local_scalar_dense.default and args[0].device == GPU_STAND_IN:
            return _stand_in_value(args[0].dtype)
        if func is aten._to_copy.default and _copies_out_of_the_stand_in(args[0], kwargs):
            return torch.full(args[0].shape, _stand_in_value(args[0].dtype),
                              dtype=kwargs.get("dtype") or args[0].dtype)
        if func in _INDEXING:
            args = (args[0], _without_masks(args[1]), *args[2:])
        return func(*args, **kwargs)

    def _check(self, func, args, kwargs) -> None:
        if func in _INDEXING:
            target, indices = args[0], [i for i in args[1] if i is not None]
            wrong = [i.device for i in indices if i.device not in (torch.device("cpu"), target.device)]
            others = [t for t in tree_leaves((args[2:], kwargs)) if isinstance(t, torch.Tensor)]
            if wrong:
                self.meetings.append((str(func), {str(target.device), *map(str, wrong)}))
                return
        else:
            others = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
            # an in-place op writes into its first tensor: a CPU scalar cannot take a GPU result
            target = others[0] if others and func._schema.name.endswith("_") else None
        devices = {t.device for t in others if not (t.device.type == "cpu" and t.dim() == 0)}
        if target is not None:
            devices.add(target.device)
        if len(devices) > 1:
            self.meetings.append((str(func), set(map(str, devices))))


def _copies_out_of_the_stand_in(tensor, kwargs) -> bool:
    target = kwargs.get("device")
    return tensor.device == GPU_STAND_IN and target is not None and torch.device(target) != GPU_STAND_IN


def _stand_in_value(dtype):
    if dtype == torch.bool:
        return _STAND_IN_VALUES[torch.bool]
    return _STAND_IN_VALUES["float" if dtype.is_floating_point else "integer"]


def _without_masks(indices: list) -> list:
    """Boolean masks on the stand-in device become empty selections (their size needs values)."""
    out = []
    for index in indices:
        if index is not None and index.dtype == torch.bool and index.device == GPU_STAND_IN:
            out += [torch.empty(0, dtype=torch.long, device=GPU_STAND_IN)] * index.dim()
        else:
            out.append(index)
    return out


@contextlib.contextmanager
def on_the_stand_in_device():
    """Within: every op is checked against CUDA's rules; yields the DeviceMeetings."""
    with DeviceMeetings() as meetings:
        yield meetings
