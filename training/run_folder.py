"""The folder a run lives in, used by one process at a time: a readable name plus a hash of the fields
that change what is learned (not those that may change on resume, nor SCST's, fixed once it starts)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time

import config as config_module
from models.attention import ATTENTIONS
from models.searches import SEARCHES
from utils import DataError

try:
    import fcntl
except ImportError:                    # Windows: runs there are not locked
    fcntl = None

MAY_CHANGE = frozenset({"train.epochs", "train.scst_epochs", "train.log_every", "train.device", "train.cuda_graphs",
                        "train.run_root", "train.run_name", "eval.metrics", "eval.cuda_graphs"})
SELF_CRITICAL = frozenset({"train.scst_lr", "train.scst_baseline", "train.scst_samples", "train.scst_temperature",
                           "train.scst_batch_size"})
LOCK_FILE = "run.lock"


def learning_fields(values: dict) -> dict:
    return {f"{section}.{name}": value for section, fields in values.items() for name, value in fields.items()
            if f"{section}.{name}" not in MAY_CHANGE | SELF_CRITICAL}


def config_hash(config) -> str:
    """Over the learning fields that differ from the defaults: a new field at its default renames no run."""
    defaults = learning_fields(config_module.Config().to_dict())
    changed = {key: value for key, value in learning_fields(config.to_dict()).items() if value != defaults.get(key)}
    changed["corpus.data_root"] = os.path.normpath(config.corpus.data_root)
    return hashlib.sha256(json.dumps(changed, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:8]


def readable_name(config) -> str:
    """The hyperparameters people compare."""
    m, t = config.model, config.train
    attention = getattr(ATTENTIONS.get(m.attention), "tag", m.attention)
    search = getattr(SEARCHES.get(config.eval.search), "tag", config.eval.search)
    return (f"{config.corpus.name}_{'+'.join(config.features.backbones)}"
            f"_{attention}{'' if search == 'beam' else '_' + search}"
            f"_h{m.hidden_size}_{t.optimizer}_lr{t.lr:g}_bs{config.loader.batch_size}_seed{t.seed}"
            f"{'_bf16' if t.autocast_bf16 else ''}{'_tf32' if t.tf32 else ''}"
            f"{f'_ls{t.label_smoothing:g}' if t.label_smoothing else ''}"
            f"{f'_ss{t.scheduled_sampling:g}' if t.scheduled_sampling else ''}")


def run_id(config) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "-", config.train.run_name or f"{readable_name(config)}_{config_hash(config)}")


def differences(saved: dict, current: dict, keys=None) -> list:
    """Each field (of keys, if given) that differs, as "section.name: saved -> current"."""
    return [f"{section}.{name}: {value!r} -> {current.get(section, {}).get(name)!r}"
            for section, fields in saved.items() for name, value in fields.items()
            if (keys is None or f"{section}.{name}" in keys) and current.get(section, {}).get(name) != value]


def check_resumable(saved_config: dict, config, last_path: str, progress: dict) -> None:
    current = config.to_dict()
    keys = set(learning_fields(current)) | (SELF_CRITICAL if progress.get("phase") == "scst" else set())
    try:       # a missing field: its default
        changes = differences(config_module.Config.from_dict(saved_config).to_dict(), current, keys)
    except config_module.ConfigError as error:
        changes = [f"the saved config cannot be read by this version ({error})"]
    if changes:
        raise DataError(f"{last_path} belongs to a run with another config, and these fields change "
                        f"what it learns: {'; '.join(changes)}. Start a new run with --new_run (a "
                        "new folder beside it), or give the saved values to go on with this one")
    notes = differences(saved_config, current)
    if notes:
        print("note: the config differs from the one last.pt was saved with: " + "; ".join(notes))


def choose_folder(config, new_run: bool) -> str:
    """This config's run folder, or with new_run a free one beside it."""
    run_dir = os.path.join(config.train.run_root, run_id(config))
    if new_run:
        base, n = run_dir, 2
        while os.path.exists(run_dir):
            run_dir, n = f"{base}-{n}", n + 1
    return run_dir


class FolderLock:
    """The run folder held by this process (flock: a dead process holds nothing); another stops at once."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK_FILE)
        os.makedirs(run_dir, exist_ok=True)
        self.handle = open(self.path, "a+", encoding="utf-8")
        if fcntl is None:
            return
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise DataError(f"run folder {run_dir} is in use by {holder}; wait for it to end, or "
                            "train beside it with --new_run (or another --train.run_name)") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"process {os.getpid()} on {socket.gethostname()}, "
                          f"since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self.handle.flush()

    def release(self) -> None:
        """Unlock; a folder holding only the lock is removed."""
        if self.handle.closed:
            return
        self.handle.close()
        with contextlib.suppress(OSError):      # another process took the folder meanwhile
            if os.listdir(self.run_dir) == [LOCK_FILE]:
                os.remove(self.path)
                os.rmdir(self.run_dir)
