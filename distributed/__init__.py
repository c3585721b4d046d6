"""Several GPUs or machines with torchrun; without it everything here is a no-op."""
from distributed.process_group import Ranks, backend_for, join, launched, leave
from distributed.resume import own_rng_state, rng_entries, run_to_resume
from distributed.sharding import BatchShare, batch_share, shard
from distributed.writers import NullWriter

__all__ = ["Ranks", "backend_for", "join", "launched", "leave", "own_rng_state", "rng_entries",
           "run_to_resume", "BatchShare", "batch_share", "shard", "NullWriter"]
