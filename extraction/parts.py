"""Extraction over torchrun's ranks: each writes its share into <output>.part<rank>, and only rank 0
merges them into the output (before a run too, so an interrupted run's parts are not redone)."""
from __future__ import annotations

import glob
import os
import re
from typing import Callable

from distributed import Ranks, shard
from extraction.extract import ExtractionSummary, extract_videos, report_on_stderr, video_id
from extraction.store import FeatureStore
from extraction.video import DEFAULT_EVERY_N, sampling_name
from utils import DataError


def part_path(output_path: str, rank: int) -> str:
    return f"{output_path}.part{rank}"


def part_files(output_path: str) -> list:
    return sorted(path for path in glob.glob(glob.escape(output_path) + ".part*") if re.search(r"\.part\d+$", path))


def merge_parts(output_path: str, backbone, sampling: str, report: Callable[[str], None], shares=()) -> set:
    """The ids of the videos the output holds once every part file's entries are in it; shares: the ranks'
    summaries, whose part files must be here."""
    unseen = [share.output_path for share in shares if share.written and not os.path.exists(share.output_path)]
    if unseen:
        raise DataError(f"rank 0 cannot see the part files {', '.join(unseen)} that other ranks wrote; "
                        "on several machines give --output on a file system all of them share, then "
                        "run the same command again (each machine's part files are kept)")
    identity = (backbone.name, backbone.feature_size, sampling)
    with FeatureStore(output_path, *identity, report, backbone.record()) as store:
        for path in part_files(output_path):
            with FeatureStore(path, *identity, report, backbone.record()) as part:
                for vid in part.entries():
                    if part.is_done(vid) and not store.is_done(vid):
                        values, attrs = part.read(vid)
                        store.write(vid, values, **attrs)
            os.remove(path)              # after the output holds its entries, flushed
        return {vid for vid in store.entries() if store.is_done(vid)}


def extract_on_ranks(video_paths: list, output_path: str, backbone, ranks: Ranks,
                     every_n: int = DEFAULT_EVERY_N, n_frames=None,
                     report: Callable[[str], None] = report_on_stderr, **options) -> ExtractionSummary:
    """Every rank returns the summary of the whole run."""
    if not ranks.active:
        return extract_videos(video_paths, output_path, backbone, every_n=every_n, n_frames=n_frames,
                              report=report, **options)
    sampling = sampling_name(every_n, n_frames)
    done = ranks.on_main(merge_parts, output_path, backbone, sampling, report)
    ids = {video_id(path) for path in video_paths}
    if ranks.is_main and ids & done:
        report(f"{output_path}: {len(ids & done)} videos already extracted, skipping them")
    mine = shard(video_paths, video_id, ranks.rank, ranks.world_size)
    part = extract_videos([path for path in mine if video_id(path) not in done],
                          part_path(output_path, ranks.rank), backbone, every_n=every_n,
                          n_frames=n_frames, report=report, **options)
    shares = ranks.gather(part)
    ranks.on_main(merge_parts, output_path, backbone, sampling, report, shares)
    return ExtractionSummary(output_path, [vid for share in shares for vid in share.written],
                             sorted(ids & done) + [vid for share in shares for vid in share.skipped],
                             {path: why for share in shares for path, why in share.failed.items()})
