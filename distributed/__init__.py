"""Several GPUs or machines with torchrun; without it every method hands its argument back.
Coordination goes through a gloo group, which keeps no GPU kernel spinning while a rank waits."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Hashable, Iterable, Optional

import torch
import torch.distributed as dist

from config import ConfigError
from utils import DataError

WAIT_LIMIT = timedelta(hours=24)    # longest wait at a coordination point (validation, last shard)
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass
class Ranks:
    """Ranks() is the single process."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    coordination: Optional[Any] = None     # the gloo group (None: the default group)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, obj):
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self.coordination)
        return box[0]

    def on_main(self, function: Callable, *args, **kwargs):
        """function(*args) run by rank 0 alone, its result (or its bad-input error) on every rank."""
        if not self.active:
            return function(*args, **kwargs)
        result, failure = None, None
        if self.is_main:
            try:
                result = function(*args, **kwargs)
            except (DataError, ConfigError) as error:
                failure = error
        result, failure = self.broadcast((result, failure and (type(failure), str(failure))))
        if failure is not None:
            raise failure[0](failure[1])
        return result

    def gather(self, obj) -> list:
        if not self.active:
            return [obj]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, obj, group=self.coordination)
        return gathered

    def share_of(self, rows: torch.Tensor, lengths: torch.Tensor, reduction: str):
        return batch_share(rows, lengths, reduction, self.rank, self.world_size)

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return tensor
        dist.all_reduce(total := tensor.detach().clone())
        return total / self.world_size

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to train with; evaluate with the model itself."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def seed_own_stream(self, seed: int) -> None:
        """Each rank's own dropout masks."""
        if self.active:
            torch.manual_seed(seed + 100_003 * self.rank)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def join(device: torch.device, quiet_others: bool = True) -> Ranks:
    """This process's Ranks (on CUDA cuda:LOCAL_RANK); quiet_others: only rank 0 prints to stdout."""
    if not all(name in os.environ for name in TORCHRUN_VARIABLES) or int(os.environ["WORLD_SIZE"]) == 1:
        return Ranks(device=device)
    rank, world_size, local_rank = (int(os.environ[name]) for name in TORCHRUN_VARIABLES)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DataError(f"rank {rank} has LOCAL_RANK {local_rank}, but this machine shows "
                            f"{torch.cuda.device_count()} GPUs; start at most that many processes "
                            "per machine (torchrun --nproc_per_node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_available():
        raise DataError("torchrun started several ranks, but this torch build has no torch.distributed")
    if not dist.is_initialized():
        backend = backend_for(device)
        dist.init_process_group(backend, timeout=WAIT_LIMIT if backend == "gloo" else None)
    coordination = dist.new_group(backend="gloo", timeout=WAIT_LIMIT) if dist.get_backend() != "gloo" else None
    if quiet_others and rank != 0:
        sys.stdout = open(os.devnull, "w")
    return Ranks(rank, world_size, local_rank, device, coordination)


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rng_entries(ranks: Ranks, own_state: dict) -> dict:
    """last.pt's RNG entries: every rank's state (rank 0's also under "rng") and their number; every rank calls it."""
    states = ranks.gather(own_state)
    return {"rng": states[0], "world_size": ranks.world_size, **({"rng_of_ranks": states} if ranks.active else {})}


def own_rng_state(state: dict, ranks: Ranks, path: str) -> dict:
    saved = state.get("world_size", 1)
    if saved != ranks.world_size:
        raise DataError(f"{path} was written by a run of {saved} rank(s), but this run has "
                        f"{ranks.world_size}: resume it with {saved} (torchrun's --nnodes times "
                        "--nproc_per_node; python train.py without torchrun is 1), or start a "
                        "new run with --new_run")
    return state["rng_of_ranks"][ranks.rank] if ranks.active else state["rng"]


def run_to_resume(ranks: Ranks, last_path: str) -> bool:
    """Whether last.pt is there, the same answer on every rank (a shared file system)."""
    seen = ranks.gather(os.path.exists(last_path))
    if len(set(seen)) > 1:
        missing = [rank for rank, there in enumerate(seen) if not there]
        raise DataError(f"{last_path} is seen by some ranks but not by rank(s) {missing}; on several "
                        "machines give --train.run_root on a file system all of them share")
    return seen[0]


@dataclass
class BatchShare:
    """Loss weights making DDP's mean gradient the one-process one: L_r = sum_{i in r} l_i / n_r, so
    w_r = W n_r / B (W t_r / T in tokens for token_mean's NLL), with no communication."""
    rows: torch.Tensor          # this rank's caption rows (CPU)
    nll_weight: float = 1.0
    caption_weight: float = 1.0
    whole: bool = True          # the whole batch on one rank: the loss is left as it is

    def weigh(self, total: torch.Tensor, nll: torch.Tensor) -> tuple:
        if self.whole:
            return total, nll
        weighted_nll = self.nll_weight * nll
        return weighted_nll + self.caption_weight * (total - nll), weighted_nll   # total - nll: per-caption terms


def batch_share(rows: torch.Tensor, lengths: torch.Tensor, reduction: str, rank: int,
                world_size: int) -> BatchShare:
    """Rank's slice of a global batch (CPU rows) and its loss weights; an empty slice takes one
    caption at weight 0, as DDP needs every rank's backward."""
    if world_size == 1:
        return BatchShare(rows)
    mine = torch.tensor_split(rows, world_size)[rank]
    if len(mine) == 0:
        return BatchShare(rows[:1], 0.0, 0.0, whole=False)
    caption_weight = world_size * len(mine) / len(rows)
    nll_weight = (world_size * float(lengths[mine].sum()) / float(lengths[rows].sum())
                  if reduction == "token_mean" else caption_weight)
    return BatchShare(mine, nll_weight, caption_weight, whole=False)


def shard(items: Iterable, key: Callable[[object], Hashable], rank: int, world_size: int) -> list:
    """Rank's items: the sorted distinct keys dealt out in turn, items of one key on one rank."""
    items = list(items)
    owner = {k: i % world_size for i, k in enumerate(sorted({key(item) for item in items}))}
    return [item for item in items if owner[key(item)] == rank]


class NullWriter:
    """The TensorBoard writer of ranks other than 0: one that keeps nothing."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    close = add_scalar
