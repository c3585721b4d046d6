"""Features of many videos into one resumable HDF5 file (ids: the files' stems), or of one video in memory."""
from __future__ import annotations

import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Union

import numpy as np
from tqdm import tqdm

from extraction.backbones import DEFAULT_BACKBONE, Backbone, build_backbone
from extraction.store import FeatureStore, NonFiniteFeatures
from extraction.video import DEFAULT_EVERY_N, VideoReadError, check_sampling, require_pyav, sampling_name
from utils import DataError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                    ".wmv", ".3gp", ".ogv", ".ts")


@dataclass
class ExtractionSummary:
    output_path: str
    written: list = field(default_factory=list)    # video ids extracted by this run
    skipped: list = field(default_factory=list)    # video ids already in the file
    failed: dict = field(default_factory=dict)     # video path -> why it was skipped

    def __str__(self) -> str:
        return (f"{self.output_path}: {len(self.written)} videos written, {len(self.skipped)} already there, "
                f"{len(self.failed)} failed") + "".join(f"\n  failed: {message}" for message in self.failed.values())


def find_videos(paths: Iterable[str]) -> list:
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(os.path.join(path, name) for name in os.listdir(path)
                            if name.lower().endswith(VIDEO_EXTENSIONS))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise DataError(f"video path {path} does not exist")
    return found


def video_id(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _as_backbone(backbone: Union[str, Backbone], weights: Optional[str], device: str) -> Backbone:
    return build_backbone(backbone, weights, device) if isinstance(backbone, str) else backbone


def features_for_video(path: str, backbone: Union[str, Backbone] = DEFAULT_BACKBONE,
                       every_n: int = DEFAULT_EVERY_N, n_frames: Optional[int] = None, batch_size: int = 64,
                       device: str = "auto", weights: Optional[str] = None) -> np.ndarray:
    """(n, D) float32 features of one video, sampled as extract_videos does. Raises VideoReadError."""
    backbone = _as_backbone(backbone, weights, device)
    return backbone.features(backbone.read(path, every_n, n_frames), batch_size)


def _prefetch(paths: list, read: Callable, workers: int):
    pending = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        try:
            for path in paths:
                pending.append((path, pool.submit(read, path)))
                if len(pending) > workers:
                    yield pending.popleft()
            while pending:
                yield pending.popleft()
        finally:  # stopped early (Ctrl-C, an error): do not decode the rest
            for _, future in pending:
                future.cancel()


def report_on_stderr(message: str) -> None:
    """Through tqdm, so that notes do not break the progress bar."""
    tqdm.write(message, file=sys.stderr)


def extract_videos(video_paths: Iterable[str], output_path: str,
                   backbone: Union[str, Backbone] = DEFAULT_BACKBONE, every_n: int = DEFAULT_EVERY_N,
                   n_frames: Optional[int] = None, batch_size: int = 64, device: str = "auto",
                   weights: Optional[str] = None, workers: int = 2, progress: bool = True,
                   report: Callable[[str], None] = report_on_stderr) -> ExtractionSummary:
    """Videos already in the file are skipped; one unreadable or with NaN/inf features is reported,
    left out and listed in the summary; workers threads decode ahead while the backbone runs."""
    check_sampling(every_n, n_frames)
    require_pyav()                 # once, not as a failure of every video
    backbone = _as_backbone(backbone, weights, device)
    summary = ExtractionSummary(output_path)

    def fail(path: str, message: str) -> None:
        summary.failed[path] = message
        report(message)
    paths_by_id = {}
    for path in video_paths:
        if (vid := video_id(path)) in paths_by_id:
            fail(path, f"{path}: same video id {vid!r} as {paths_by_id[vid]}; left out")
        else:
            paths_by_id[vid] = path

    with FeatureStore(output_path, backbone.name, backbone.feature_size,
                      sampling_name(every_n, n_frames), report, backbone.record()) as store:
        todo = []
        for vid, path in paths_by_id.items():
            (summary.skipped if store.is_done(vid) else todo).append(vid)
        if summary.skipped:
            report(f"{output_path}: {len(summary.skipped)} videos already extracted, skipping them")

        bar = tqdm(total=len(todo), unit="video", desc=f"{backbone.name} on {backbone.device}",
                   disable=not progress, file=sys.stderr,
                   bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}{postfix}]")
        decoded = _prefetch([paths_by_id[vid] for vid in todo],
                            lambda path: backbone.read(path, every_n, n_frames), max(1, workers))
        with bar, closing(decoded):
            for finished, (path, future) in enumerate(decoded, 1):
                vid = video_id(path)
                try:
                    sampled = future.result()
                except Exception as error:  # a decoder failure PyAV does not classify is not fatal either
                    fail(path, f"{error}; skipped" if isinstance(error, VideoReadError) else
                         f"cannot read video {path} ({type(error).__name__}: {error}); skipped")
                else:
                    try:
                        store.write(vid, backbone.features(sampled, batch_size, done=bar.update),
                                    source=os.path.basename(path), total_frames=sampled.total_frames, fps=sampled.fps)
                        summary.written.append(vid)
                    except NonFiniteFeatures as error:   # this video only; the others go on
                        fail(path, f"{error}; skipped")
                bar.update(finished - bar.n)         # a whole video, after its batches' parts
                bar.set_postfix(failed=len(summary.failed), refresh=False)
    return summary
