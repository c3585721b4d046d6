"""Shared helpers: errors, devices, seeds, CUDA graphs, atomic files."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import sys
import tempfile

import numpy as np
import torch

from config import ConfigError


class DataError(RuntimeError):
    """Bad or missing input, with a message that names the file (or video) and the fix."""


class WriteError(DataError):
    pass


def describe_os_error(error: OSError) -> str:   # 'No space left on device (ENOSPC)'
    name = errno.errorcode.get(error.errno)
    return f"{error.strerror or error} ({name})" if name else error.strerror or str(error)


def exit_status(command, interrupted: str = "interrupted") -> int:
    """command()'s status (an int, else 0); 2 for bad input, 1 for an OSError, 130 on Ctrl-C."""
    try:
        status = command()
    except (DataError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except OSError as error:
        print(f"error: {describe_os_error(error)}{f' ({error.filename})' if error.filename else ''}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes the GPU when there is one; never hard-code CUDA."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"train.device={name} asked for CUDA, but no CUDA device is visible; "
                        "use --train.device cpu or auto")
    return device


def autocast_bf16(device_type: str, enabled: bool, cache: bool = True):
    """No context at all when disabled: torch.autocast(enabled=False) would switch off the caller's."""
    return (torch.autocast(device_type, dtype=torch.bfloat16, cache_enabled=cache) if enabled
            else contextlib.nullcontext())


@contextlib.contextmanager
def tf32_products(enabled: bool):
    """CUDA's float32 matrix products on TF32 when enabled; disabled, the caller's setting stays."""
    if not enabled:
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def to_device(tensor: torch.Tensor, device) -> torch.Tensor:
    """A CPU tensor goes to CUDA through a private pinned copy: no wait, and the caller may reuse its own."""
    device = torch.device(device)
    if tensor.device.type == "cpu" and device.type == "cuda":
        return torch.empty_like(tensor, pin_memory=True).copy_(tensor).to(device, non_blocking=True)
    return tensor.to(device)


@contextlib.contextmanager
def no_autocast_cache():
    """A capture would read an outer autocast's weight cache after it is freed."""
    before = torch.is_autocast_cache_enabled()
    torch.set_autocast_cache_enabled(False)
    try:
        yield
    finally:
        torch.set_autocast_cache_enabled(before)


class CudaGraphs:
    """CUDA graphs on one device in one memory pool (its graphs never run at once)."""

    def __init__(self, device):
        self.device = torch.device(device)
        with torch.cuda.device(self.device):
            self.pool = torch.cuda.graph_pool_handle()
            self.side = torch.cuda.Stream(self.device)

    def warm_up(self, fn):
        """fn() run eagerly on the side stream: capture needs the lazy set-up done."""
        with torch.cuda.device(self.device), no_autocast_cache():
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                result = fn()
            torch.cuda.current_stream().wait_stream(self.side)
        return result

    def capture(self, fn) -> tuple:   # (fn's outputs, which each replay fills; replay)
        graph = torch.cuda.CUDAGraph()
        with (torch.cuda.device(self.device), no_autocast_cache(),
              torch.cuda.graph(graph, pool=self.pool, stream=self.side)):
            outputs = fn()

        def replay():
            with torch.cuda.device(self.device):
                graph.replay()
        return outputs, replay


def try_capture(graphs, fn, option: str, what: str, going_on: str) -> tuple:
    """(outputs, replay, None); when capture fails, (None, None, why) and a warning: the caller goes on eagerly."""
    try:
        return (*graphs.capture(fn), None)
    except RuntimeError as error:
        why = str(error).splitlines()[0]
        print(f"warning: {option}: {what} could not be captured ({why}); {going_on} goes on "
              "without CUDA graphs", file=sys.stderr, flush=True)
        return None, None, why


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# read once: reading the umask sets it, which a file made meanwhile by another thread would get
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str, write) -> None:
    """write(file) on a temporary file renamed over path: a crash leaves the old file or the new one."""
    directory, tmp = os.path.dirname(os.path.abspath(path)), None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
        os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp makes 0600; the result should be an ordinary file
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        cause, seen = error, set()   # the OSError behind it (torch.save wraps a full disk in a RuntimeError)
        while cause is not None and not isinstance(cause, OSError) and id(cause) not in seen:
            seen.add(id(cause))
            cause = cause.__cause__ or cause.__context__
        if not isinstance(cause, OSError):
            raise
        kept = ("its previous contents are kept" if os.path.isfile(path) else "nothing was written there")
        raise WriteError(f"cannot write {path}: {describe_os_error(cause)}; {kept}") from None


def read_json(path: str, fix: str, problem: str = "cannot be read", error_type: bool = False):
    """path's JSON; a read or parse failure is a DataError naming path, the error and the fix."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        detail = f"{type(error).__name__}: {error}" if error_type else error
        raise DataError(f"{path} {problem} ({detail}){'; ' if fix else ''}{fix}") from None


def atomic_save_json(obj, path: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(json.dumps(obj, indent=1).encode("utf-8")))


def atomic_torch_save(obj, path: str) -> None:
    atomic_write_bytes(path, lambda f: torch.save(obj, f))
