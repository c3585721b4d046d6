"""The HDF5 feature file an extraction writes into, safe to stop and run again.

Layout (splits/layout.py): one float32 dataset (n_frames, D) per video id. The file records the
backbone, D and the frame sampling, so that a second run cannot mix in other features. A video's
dataset is written whole into a staging group, then moved to its name, then the file is flushed:
a run stopped at any moment leaves each video complete or absent, and the next run clears what
staging holds and re-does any entry that is not a (n_frames > 0, D) array.
"""
from __future__ import annotations

import os
from typing import Callable

import h5py
import numpy as np

from utils import DataError

STAGING = "__unfinished__"


class FeatureStore:
    """Open (or create) the feature file of one backbone and frame sampling, for writing."""

    def __init__(self, path: str, backbone: str, feature_size: int, sampling: str,
                 report: Callable[[str], None] = print):
        self.path = path
        self.feature_size = feature_size
        self.report = report
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            self.file = h5py.File(path, "a")
        except OSError as error:
            raise DataError(f"feature file {path} cannot be opened for writing ({error}); another "
                            "extraction may be writing it, or a crash damaged it: then move it away and "
                            "run again (its videos are extracted anew)") from None
        try:
            self._check_identity({"backbone": backbone, "feature_size": feature_size, "sampling": sampling})
            self._clear_staging()
        except BaseException:
            self.file.close()
            raise

    def _check_identity(self, identity: dict) -> None:
        attrs = self.file.attrs
        if "backbone" not in attrs:
            if any(name != STAGING for name in self.file):
                raise DataError(f"feature file {self.path} was not written by this extractor (it has "
                                "no 'backbone' attribute); choose another --output, it is left as it is")
            attrs.update(identity)
            return
        stored = {key: attrs.get(key) for key in identity}
        stored = {key: value.item() if isinstance(value, np.generic) else value
                  for key, value in stored.items()}
        if stored != identity:
            raise DataError(f"feature file {self.path} holds {stored}, but this run makes {identity}; "
                            "one file holds one backbone and one frame sampling: choose another "
                            "--output or the same settings")

    def _clear_staging(self) -> None:
        if STAGING in self.file:
            self.report(f"{self.path}: removing {len(self.file[STAGING])} unfinished entries "
                        "left by an interrupted run")
            del self.file[STAGING]
            self.file.flush()

    def is_done(self, video_id: str) -> bool:
        """True if video_id has a complete entry; an invalid one is deleted (to be redone)."""
        entry = self.file.get(video_id)
        if entry is None:
            return False
        if (isinstance(entry, h5py.Dataset) and entry.ndim == 2 and entry.shape[0] > 0
                and entry.shape[1] == self.feature_size):
            return True
        shape = entry.shape if isinstance(entry, h5py.Dataset) else "a group"
        self.report(f"{self.path}: entry {video_id} is invalid ({shape}); extracting it again")
        del self.file[video_id]
        return False

    def write(self, video_id: str, features: np.ndarray, **attrs) -> None:
        if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] != self.feature_size:
            raise ValueError(f"features of {video_id} have shape {features.shape}; "
                             f"expected (n_frames > 0, {self.feature_size})")
        staging = self.file.require_group(STAGING)
        if video_id in staging:
            del staging[video_id]
        dataset = staging.create_dataset(video_id, data=features.astype(np.float32))
        dataset.attrs.update(attrs)
        if video_id in self.file:
            del self.file[video_id]
        self.file.move(f"{STAGING}/{video_id}", video_id)
        self.file.flush()

    def close(self) -> None:
        if not self.file:  # already closed
            return
        if STAGING in self.file and len(self.file[STAGING]) == 0:
            del self.file[STAGING]
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
