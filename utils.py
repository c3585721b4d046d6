"""Shared helpers: errors, devices, seeds, CUDA graphs, atomic files (the COCO metrics are in
evaluation/coco.py)."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import random
import sys
import tempfile

import numpy as np
import torch

from config import ConfigError


class DataError(RuntimeError):
    """Bad or missing input, with a message that names the file (or video) and the fix."""


class WriteError(DataError):
    """A file that could not be written (disk full, no permission): the path, the reason, and
    what is kept."""


def os_error_in(error: BaseException):
    """The OSError behind error (torch.save wraps a full disk in a RuntimeError), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def describe_os_error(error: OSError) -> str:
    """'No space left on device (ENOSPC)': the reason and its errno name, for one line."""
    name = errno.errorcode.get(error.errno) if error.errno is not None else None
    reason = error.strerror or str(error)
    return f"{reason} ({name})" if name else reason


def exit_status(command, interrupted: str = "interrupted") -> int:
    """Run command() for a command line: its status if it returns an int, else 0; or 2 with the
    message on stderr, not a traceback, when the input is bad (DataError, ConfigError); or, on
    Ctrl-C, 130 (the shells' status for it) with `interrupted`, which says what is kept."""
    try:
        status = command()
    except (DataError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except OSError as error:           # the machine's, not the input's: one line all the same
        where = f" ({error.filename})" if error.filename else ""
        print(f"error: {describe_os_error(error)}{where}", file=sys.stderr)
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


def device_description(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and logical CPU count, for reports of measured speed."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:                                  # the CPU's model name, where Linux tells it
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model} ({os.cpu_count()} logical CPUs)"


def load_average():
    """The machine's 1, 5 and 15 minute load averages, or None where the system has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def autocast_bf16(device_type: str, enabled: bool, cache: bool = True):
    """bf16 autocast when enabled, else no autocast context at all: torch.autocast(enabled=False)
    would switch off an autocast the caller opened (the benchmark's --autocast bf16).
    cache False: no cache of the weights' bf16 copies, as CUDA graph capture requires."""
    if enabled:
        return torch.autocast(device_type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


@contextlib.contextmanager
def tf32_products(enabled: bool):
    """CUDA's float32 matrix products on TF32 tensor cores when enabled (Ampere and later: several
    times the float32 rate, with a 10-bit mantissa's rounding); the CPU's are never affected.
    Disabled, nothing changes, also a TF32 the caller allowed (the benchmark's --tf32)."""
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
    """tensor on `device`, without making the CPU wait for the GPU. A copy from ordinary
    (pageable) host memory to CUDA waits for every kernel queued before it, so the CPU could not
    prepare the next batch while the GPU runs this one; a copy from pinned memory, non_blocking,
    does not wait (PyTorch keeps the pinned block until the copy is done)."""
    device = torch.device(device)
    if tensor.device.type == "cpu" and device.type == "cuda":
        # a private pinned copy, also of a tensor already pinned: the caller may change its own
        # at once, while the copy to the GPU is still to run
        staged = torch.empty_like(tensor, pin_memory=True).copy_(tensor)
        return staged.to(device, non_blocking=True)
    return tensor.to(device)


@contextlib.contextmanager
def no_autocast_cache():
    """No cache of autocast's bf16 weight copies, also under an autocast opened outside (the
    benchmark's --autocast bf16): in a capture the cache would be freed while the graph still
    reads it."""
    before = torch.is_autocast_cache_enabled()
    torch.set_autocast_cache_enabled(False)
    try:
        yield
    finally:
        torch.set_autocast_cache_enabled(before)


class CudaGraphs:
    """torch.cuda's graphs on one device, all in one memory pool (its graphs never run at once):
    what train.cuda_graphs (training/cuda_graphs.py) and eval.cuda_graphs
    (models/decode_graphs.py) capture and replay. The tests replace it with a stand-in that runs
    on the CPU. Every call is made on the graphs' device, whichever device is current (a
    capture on another device's stream would record nothing and replay nothing), and without
    autocast's weight cache."""

    def __init__(self, device):
        self.device = torch.device(device)
        with torch.cuda.device(self.device):
            self.pool = torch.cuda.graph_pool_handle()
            # warm-ups and captures: one stream, whose cached memory every warm-up reuses
            self.side = torch.cuda.Stream(self.device)

    def warm_up(self, fn):
        """fn() run eagerly on the side stream (capture must follow such a run: the lazy set-up
        of libraries and kernels cannot happen inside it); returns its result."""
        with torch.cuda.device(self.device), no_autocast_cache():
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                result = fn()
            torch.cuda.current_stream().wait_stream(self.side)
        return result

    def capture(self, fn) -> tuple:
        """Records fn's kernels without running them: (what fn returned, whose tensors each
        replay fills; the replay function)."""
        graph = torch.cuda.CUDAGraph()
        with (torch.cuda.device(self.device), no_autocast_cache(),
              torch.cuda.graph(graph, pool=self.pool, stream=self.side)):
            outputs = fn()

        def replay():
            with torch.cuda.device(self.device):
                graph.replay()
        return outputs, replay


def try_capture(graphs, fn, option: str, what: str, going_on: str) -> tuple:
    """graphs.capture(fn) as (outputs, replay, None); or, when capture fails (an operator that
    this torch version cannot capture), (None, None, why) and a warning naming the option: the
    caller goes on eagerly. Nothing ran either way."""
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


# Read once: reading the umask means setting it, which a file made meanwhile by another thread
# (checkpoints are written by one, training/background_saves.py) would get.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str, write) -> None:
    """Call write(file_object) on a temporary file beside path, then rename it over path.

    A crash at any moment leaves either the old file or the new one, never half of one; a
    failed write (a full disk) raises WriteError naming the path and what is kept.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
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
        cause = os_error_in(error)
        if cause is None:
            raise
        kept = ("its previous contents are kept" if os.path.isfile(path) else "nothing was written there")
        raise WriteError(f"cannot write {path}: {describe_os_error(cause)}; {kept}") from None


def atomic_save_json(obj, path: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(json.dumps(obj, indent=1).encode("utf-8")))


def atomic_torch_save(obj, path: str) -> None:
    atomic_write_bytes(path, lambda f: torch.save(obj, f))
