"""The HDF5 feature file an extraction writes into, safe to stop and run again (docs/data.md).

HDF5 keeps no journal, so the file is never written in place: each video goes atomically to
<output>.pending/, and closing the store renames a synced copy holding them over the file.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import zlib
from typing import Callable, Optional

try:
    import resource
except ImportError:                    # not on Windows
    resource = None

import h5py
import numpy as np

from utils import DataError, WriteError, atomic_save_json, atomic_write_bytes

STAGING = "__unfinished__"
CHECKSUM = "crc32"            # of the float32 values, written with them


class NonFiniteFeatures(DataError):
    pass


class DiskFull(DataError):
    pass


class FeatureStore:

    def __init__(self, path: str, backbone: str, feature_size: int, sampling: str,
                 report: Callable[[str], None] = print, record: Optional[dict] = None):
        self.path, self.feature_size, self.report = path, feature_size, report
        self.pending = path + ".pending"
        self.identity = {"backbone": backbone, "feature_size": feature_size, "sampling": sampling}
        self.record = record or {}
        self.attrs, self.stored, self.dropped, self.reader, self.closed = {}, set(), set(), None, False
        os.makedirs(self.pending, exist_ok=True)
        mark = os.path.join(self.pending, "identity.json")
        if os.path.isfile(mark):
            with open(mark, encoding="utf-8") as handle:
                found = json.load(handle)
            if found != self.identity:
                raise DataError(f"{self.pending} holds videos of {found}, but this run makes "
                                f"{self.identity}; choose another --output or the same settings")
        else:
            atomic_save_json(self.identity, mark)
        if os.path.exists(path):
            try:
                with h5py.File(path, "r") as file:
                    self._check(file)
                    self.attrs = {key: file.attrs[key] for key in file.attrs}
                    self.stored = {name for name in file if name != STAGING}
                    self.dropped = {STAGING} if STAGING in file else set()
                    if STAGING in file:
                        self.report(f"{path}: removing {len(file[STAGING])} unfinished entries left "
                                    "by an interrupted run")
            except OSError as error:
                raise DataError(f"feature file {path} cannot be read ({error}); another extraction may "
                                "be writing it, or another program damaged it: then move it away and run "
                                f"again (the videos in {self.pending} are kept)") from None

    def _file(self):
        if self.reader is None:
            self.reader = h5py.File(self.path, "r")
        return self.reader

    def _check(self, file) -> None:
        """Of the record only the preprocessing must match: the weights' location may change."""
        if "backbone" not in file.attrs and any(name != STAGING for name in file):
            raise DataError(f"feature file {self.path} was not written by this extractor (it has "
                            "no 'backbone' attribute); choose another --output, it is left as it is")
        stored = {key: plain(file.attrs.get(key)) for key in self.identity}
        if "backbone" in file.attrs and stored != self.identity:
            raise DataError(f"feature file {self.path} holds {stored}, but this run makes {self.identity}; "
                            "one file holds one backbone and one frame sampling: choose another "
                            "--output or the same settings")
        stored, wanted = file.attrs.get("preprocessing"), self.record.get("preprocessing")
        if stored is not None and wanted is not None and str(plain(stored)) != wanted:
            raise DataError(f"feature file {self.path} was extracted with the preprocessing {plain(stored)}, "
                            f"but this run's weights ({self.record.get('weights')}) state {wanted}; one file "
                            "holds one preprocessing: choose another --output or the same weights")

    def _pending_file(self, video_id: str) -> str:
        return os.path.join(self.pending, f"{video_id}.npz")

    def entries(self) -> list:
        pending = {name[:-4] for name in os.listdir(self.pending)
                   if name.endswith(".npz") and not name.startswith(".tmp-")}
        return sorted((self.stored - self.dropped) | pending)

    def read(self, video_id: str) -> tuple:
        if os.path.isfile(self._pending_file(video_id)):
            with np.load(self._pending_file(video_id), allow_pickle=False) as saved:
                return saved["values"], json.loads(str(saved["attrs"]))
        entry = self._file()[video_id]
        return entry[()], {key: plain(value) for key, value in entry.attrs.items()}

    def is_done(self, video_id: str) -> bool:
        """An invalid entry is dropped, to be redone."""
        if os.path.isfile(self._pending_file(video_id)):
            return True
        if video_id not in self.stored or video_id in self.dropped:
            return False
        why = self._damage(self._file()[video_id])
        if why is None:
            return True
        self.report(f"{self.path}: entry {video_id} is {why}; extracting it again")
        self.dropped.add(video_id)
        return False

    def _damage(self, entry) -> Optional[str]:
        """Why an entry is incomplete; one without a CRC (another tool's) only for a frame of zeros."""
        if not (isinstance(entry, h5py.Dataset) and entry.ndim == 2 and entry.shape[0] > 0
                and entry.shape[1] == self.feature_size):
            return f"invalid ({entry.shape if isinstance(entry, h5py.Dataset) else 'a group'})"
        try:
            values = np.asarray(entry[()], dtype=np.float32)
        except (OSError, ValueError, TypeError) as error:
            return f"unreadable ({error})"
        stored = entry.attrs.get(CHECKSUM)
        if stored is not None:
            return None if int(stored) == checksum(values) else "incomplete (its values do not match their CRC)"
        zero_frames = int((~values.any(axis=1)).sum())
        return f"incomplete ({zero_frames} frames of zeros)" if zero_frames else None

    def write(self, video_id: str, features: np.ndarray, **attrs) -> None:
        if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] != self.feature_size:
            raise ValueError(f"features of {video_id} have shape {features.shape}; "
                             f"expected (n_frames > 0, {self.feature_size})")
        if not np.isfinite(features).all():
            bad = int((~np.isfinite(features).all(axis=1)).sum())
            raise NonFiniteFeatures(f"features of video {video_id} hold NaN or inf ({bad} of its {len(features)} "
                                    f"frames); nothing of it is written to {self.path}. Damaged weights, or "
                                    "weights of another architecture, give such numbers")
        values = np.ascontiguousarray(features, dtype=np.float32)
        attrs = {key: plain(value) for key, value in attrs.items() if key != CHECKSUM}
        try:
            atomic_write_bytes(self._pending_file(video_id), lambda handle: np.savez(
                handle, values=values, attrs=np.array(json.dumps(attrs))))
        except WriteError as error:
            raise DiskFull(f"{error}; the videos extracted before it are kept (in {self.pending}): "
                           "free space and run the same command again") from None

    def close(self, assemble: bool = True) -> None:
        """assemble False (a full disk) leaves the videos pending for the next run."""
        if self.closed:
            return
        self.closed = True
        added = sorted(set(self.entries()) - (self.stored - self.dropped))
        if self.reader is not None:
            self.reader.close()
        if not assemble:
            return
        if not (added or self.dropped or not os.path.exists(self.path)):
            shutil.rmtree(self.pending, ignore_errors=True)
            return
        needed = (os.path.getsize(self.path) if os.path.exists(self.path) else 0) + 65536 + sum(
            os.path.getsize(self._pending_file(vid)) + 4096 for vid in added)
        if shutil.disk_usage(os.path.dirname(os.path.abspath(self.path))).free < needed:
            raise self._full(len(added), "ENOSPC")
        if 0 <= (resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource else -1) < needed:
            raise self._full(len(added), "EFBIG")
        tmp, file = f"{self.path}.writing", None
        try:
            if os.path.exists(self.path):
                shutil.copyfile(self.path, tmp)
            file = h5py.File(tmp, "a" if os.path.exists(self.path) else "w")   # never a stopped run's copy
            file.attrs.update({**self.identity, **self.record, **self.attrs})
            for name in self.dropped & set(file):
                del file[name]
            for vid in added:
                values, attrs = self.read(vid)
                file.create_dataset(vid, data=values).attrs.update({**attrs, CHECKSUM: checksum(values)})
            file.close()
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except (OSError, RuntimeError) as error:       # h5py raises either for a failed write
            if not (_has_errno(error, errno.ENOSPC) or _has_errno(error, errno.EFBIG)):
                raise
            self.unflushable = file      # closing it again fails inside HDF5; it dies with the process
            if os.path.exists(tmp):
                os.remove(tmp)
            raise self._full(len(added), "EFBIG" if _has_errno(error, errno.EFBIG) else "ENOSPC") from None
        shutil.rmtree(self.pending, ignore_errors=True)

    def _full(self, count: int, name: str) -> DiskFull:
        return DiskFull(f"{self.path}: no space left on the device ({name}) for adding {count} videos "
                        f"to it; the file is left as it was and the extracted videos stay in "
                        f"{self.pending}: free space and run the same command again")

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        self.close(assemble=not isinstance(error, DiskFull))


def checksum(values: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(values, dtype=np.float32).tobytes())


def _has_errno(error: Exception, code: int) -> bool:
    """HDF5 names the errno in its message, not always in OSError.errno."""
    return getattr(error, "errno", None) == code or f"errno = {code}," in str(error)


def plain(value):
    """An HDF5 attribute as a Python value: numpy scalars unwrapped, bytes decoded."""
    value = value.item() if isinstance(value, np.generic) else value
    return value.decode() if isinstance(value, bytes) else value
