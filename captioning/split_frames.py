"""The frames behind a prepared split's features, for its attention pictures."""
from __future__ import annotations

import json
import os
from typing import Callable, Optional

from captioning.attention_map import SeenFrames
from captioning.video import DEFAULT_EVERY_N
from extraction.extract import find_videos, video_id
from extraction.video import VideoReadError, parse_sampling, read_frames
from loader.dataset import recorded_sampling
from loader.frames import sample_frame_indices
from splits.layout import corpus_paths, prepare_command, read_prepared
from utils import DataError

THUMB_SHORT_SIDE = 64   # decode small: thumbnails are a few dozen pixels wide


class SplitFrames:
    """frames(video_id, n_stored) -> SeenFrames of the K frames the model saw of that video."""

    def __init__(self, config, split: str, videos_dir: Optional[str] = None, every_n: Optional[int] = None,
                 report: Callable[[str], None] = print):
        self.k, self.report = config.features.n_frames, report
        paths = corpus_paths(config.corpus.data_root, config.corpus.name)
        self.demo_specs, self.every_n, self.n_frames = None, every_n or DEFAULT_EVERY_N, None
        self.files, self.noted = {}, set()
        if config.corpus.name == "Demo":
            path = os.path.join(paths.annotations, "clips.json")
            fix = f"rebuild the demo corpus: {prepare_command(config)}"
            try:
                with open(path, encoding="utf-8") as handle:
                    self.demo_specs = {clip["id"]: clip["spec"] for clip in json.load(handle)["clips"]}
            except FileNotFoundError:
                raise DataError(f"{path} does not exist; the demo's pictures redraw its clips from it: {fix}") from None
            except (UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
                raise DataError(f"{path} is damaged ({type(error).__name__}: {error}); {fix}") from None
            return
        record = read_prepared(paths, split, prepare_command(config))
        sampling = parse_sampling(recorded_sampling(config, split))
        if sampling != (None, None):
            self.every_n, self.n_frames = sampling
        else:
            report(f"the feature files do not record their frame sampling; pictures assume every_n={self.every_n} "
                   "(the usual convention; change it with --every_n)")
        if not videos_dir:
            report("no --videos folder: attention pictures show frame numbers without thumbnails")
            return
        split_ids, mapping = {v["id"] for v in record["videos"]}, {}
        mapping_file = os.path.join(paths.annotations, "youtube_mapping.txt")
        if os.path.isfile(mapping_file):   # a file is named by its video id or MSVD's YouTube clip id
            from splits.msvd_annotations import read_mapping
            mapping = read_mapping(mapping_file)
        for path in find_videos([videos_dir]):
            stem = video_id(path)
            vid = stem if stem in split_ids else mapping.get(stem)
            if vid in split_ids:
                self.files[vid] = path
        if not self.files:
            report(f"no video file in {videos_dir} is named after a video of this split; "
                   "attention pictures show frame numbers without thumbnails")

    def frames(self, vid: str, n_stored: int) -> SeenFrames:
        chosen = sample_frame_indices(n_stored, self.k)
        if self.demo_specs is not None:  # one stored feature per rendered frame
            from splits.demo import render_frames
            return SeenFrames(chosen.tolist(), render_frames(self.demo_specs[vid])[chosen])
        if self.files and vid not in self.files:
            self._note(vid, f"no video file of {vid} in the --videos folder; the picture of {vid} has no thumbnails")
        elif vid in self.files:   # the video's frames sampled as its features were, when they fit
            path = self.files[vid]
            try:
                sampled = read_frames(path, self.every_n or 1, self.n_frames, THUMB_SHORT_SIDE)
            except VideoReadError as error:
                self._note(vid, f"{error}; the picture of {vid} has no thumbnails")
            else:
                if len(sampled.frames) == n_stored:
                    return SeenFrames([sampled.indices[i] for i in chosen], sampled.frames[chosen])
                self._note(vid, f"{path} gives {len(sampled.frames)} frames sampled as the features were, "
                                f"but {vid} has {n_stored} features: another cut of the video? its picture "
                                "has no thumbnails")
        if self.every_n:  # stored feature i is frame i * every_n
            return SeenFrames((chosen * self.every_n).tolist())
        return SeenFrames(chosen.tolist(), axis_label="stored feature")

    def _note(self, vid: str, message: str) -> None:
        """Once per video: the page and the pictures ask for the same frames."""
        if vid not in self.noted:
            self.noted.add(vid)
            self.report(message)
