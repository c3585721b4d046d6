"""What CUDA graph capture forbids, checked on the CPU where graphs cannot run: the tests of
train.cuda_graphs (tests/test_cuda_graphs.py) and eval.cuda_graphs (tests/test_decode_graphs.py)
run the captured function under SyncOrValueShapes and expect it to find nothing."""
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
