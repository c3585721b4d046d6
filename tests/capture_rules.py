"""What CUDA graph capture forbids, checked on the CPU where graphs cannot run: the tests of
train.cuda_graphs (tests/test_cuda_graphs.py) and eval.cuda_graphs (tests/test_decode_graphs.py)
run the captured function under SyncOrValueShapes and expect it to find nothing; StandInGraphs
plays torch.cuda's graphs on the CPU."""
import copy

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
# Operators that read a value back to the CPU or whose output shape depends on values.
FORBIDDEN_IN_CAPTURE = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
                        aten._unique2.default, aten.unique_consecutive.default, aten.unique_dim.default,
                        aten.repeat_interleave.Tensor}
# Indexing with a boolean mask: its result's size is the mask's count of True.
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}


class SyncOrValueShapes(TorchDispatchMode):
    """Records the operators that CUDA graph capture forbids: reading a value back to the CPU,
    shapes made from values, and copies from the host into the device (the graph would replay
    the copy of whatever that host memory holds then), also those of torch.tensor(data,
    device=...), which no dispatched operator shows (TensorsFromData sees them)."""

    def __init__(self):
        super().__init__()
        self.found = []
        self.from_data = TensorsFromData(self.found)

    def __enter__(self):
        self.from_data.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.from_data.__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FORBIDDEN_IN_CAPTURE:
            self.found.append(str(func))
        elif func in INDEXING and any(i is not None and i.dtype in (torch.bool, torch.uint8)
                                      for i in args[1]):
            self.found.append(f"{func} with a boolean mask")
        elif func is aten._to_copy.default and _host_to_device(args[0], kwargs.get("device")):
            self.found.append(f"{func} from the host")
        elif func is aten.copy_.default and _host_to_device(args[1], args[0].device):
            self.found.append(f"{func} from the host")
        return func(*args, **kwargs)


def _host_to_device(source: torch.Tensor, destination) -> bool:
    return source.device.type == "cpu" and destination is not None and torch.device(destination).type != "cpu"


class TensorsFromData(TorchFunctionMode):
    """Records tensors made from Python data on a device: torch.tensor(data, device=...),
    torch.as_tensor and Tensor.new_tensor copy it from the host, unseen by a dispatch mode."""

    def __init__(self, found: list):
        super().__init__()
        self.found = found

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.tensor, torch.as_tensor):
            device = kwargs.get("device")
        elif func is torch.Tensor.new_tensor:
            device = kwargs.get("device") or args[0].device
        else:
            device = None
        if device is not None and torch.device(device).type != "cpu":
            self.found.append(f"{func.__name__} from the host")
        return func(*args, **kwargs)


def tensors_of(value) -> list:
    """Every tensor in a decode's outputs (BeamHistory, Decoded, their lists), in a fixed order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    elif hasattr(value, "__dict__"):
        value = list(vars(value).values())
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in tensors_of(item)]
    return []


class StandInGraphs:
    """torch.cuda's graphs as far as DecodeGraphs sees them, on the CPU."""

    def __init__(self):
        self.captures = 0

    @staticmethod
    def warm_up(fn):
        return fn()

    def capture(self, fn):
        """Like a real capture, the Python runs once and leaves outputs whose values mean nothing
        (here: garbage written into them); a replay runs the decode again, on whatever the
        static buffers and the weights hold then, into those same output tensors."""
        self.captures += 1
        outputs = fn()
        for tensor in tensors_of(outputs):
            tensor.fill_(-1 if not tensor.is_floating_point() else float("nan"))

        def replay():
            for mine, fresh in zip(tensors_of(outputs), tensors_of(fn()), strict=True):
                mine.copy_(fresh)
        return outputs, replay


def eval_settings(config, **values):
    settings = copy.deepcopy(config.eval)
    settings.__dict__.update({"beam_size": 3, "max_len": 5, **values})
    return settings
