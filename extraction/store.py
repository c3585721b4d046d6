"""The HDF5 feature file an extraction writes into, safe to stop and run again.

Layout (splits/layout.py): one float32 dataset (n_frames, D) per video id. The file records the
backbone, D and the frame sampling, so that a second run cannot mix in other features, and how
frames became the backbone's input (Backbone.record: the weights, resize, crop, normalisation,
clip length), so that captioning a new video can do the same. Features with NaN or inf are
refused: nothing of that video is written. A video's dataset is written whole into a staging
group, then moved to its name, then the file is flushed: a run stopped at any moment leaves each
video complete or absent, and the next run clears what staging holds and re-does any entry that
is not a (n_frames > 0, D) array.
"""
from __future__ import annotations

import os
from typing import Callable, Optional

import h5py
import numpy as np

from utils import DataError

STAGING = "__unfinished__"


class NonFiniteFeatures(DataError):
    """A video's features hold NaN or inf; the message names the video and the file."""


class FeatureStore:
    """Open (or create) the feature file of one backbone and frame sampling, for writing."""

    def __init__(self, path: str, backbone: str, feature_size: int, sampling: str,
                 report: Callable[[str], None] = print, record: Optional[dict] = None):
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
            self._check_record(record or {})
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

    def _check_record(self, record: dict) -> None:
        """The preprocessing must be the one the file's features were made with; the weights'
        location may change (a folder moved, an id downloaded to a folder). A file written before
        files recorded it takes this run's record."""
        attrs = self.file.attrs
        stored = attrs.get("preprocessing")
        wanted = record.get("preprocessing")
        if stored is not None and wanted is not None and _text(stored) != wanted:
            raise DataError(f"feature file {self.path} was extracted with the preprocessing {_text(stored)}, "
                            f"but this run's weights ({record.get('weights')}) state {wanted}; one file "
                            "holds one preprocessing: choose another --output or the same weights")
        for key, value in record.items():
            if key not in attrs:
                attrs[key] = value

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
        if not np.isfinite(features).all():
            bad = int((~np.isfinite(features).all(axis=1)).sum())
            raise NonFiniteFeatures(f"features of video {video_id} hold NaN or inf ({bad} of its "
                                    f"{len(features)} frames); nothing of it is written to {self.path}. "
                                    "Damaged weights, or weights of another architecture, "
                                    "give such numbers")
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


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
