"""What last.pt keeps of the ranks: every rank's RNG state (rank 0's also under "rng") and their
number, so that a run resumes only with as many ranks, each with its own stream back."""
from __future__ import annotations

import os

from distributed.process_group import Ranks
from utils import DataError


def rng_entries(ranks: Ranks, own_state: dict) -> dict:
    """last.pt's RNG entries; every rank calls it, as it gathers the states."""
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
