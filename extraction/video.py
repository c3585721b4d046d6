"""Decode a video with PyAV into its sampled frames (every Nth, or K equally spaced), scaled while decoding."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from utils import DataError

DEFAULT_EVERY_N = 5        # the MSVD / MSR-VTT feature files' usual sampling
# Headers may miscount a few frames; fewer than this share decoded means the file is cut off.
MIN_DECODED_SHARE = 0.9


def require_pyav():
    try:
        import av
    except ImportError as error:
        raise DataError(f"reading video files needs PyAV ({error}): `pip install av` "
                        "(it is in requirements.txt)") from None
    return av


class VideoReadError(RuntimeError):
    pass


@dataclass
class SampledFrames:
    frames: np.ndarray      # (n, H, W, 3) uint8 RGB, min(H, W) == the requested short side
    indices: list           # position of each kept frame among the decoded frames
    total_frames: int       # frames decoded from the whole video
    fps: float              # average frame rate the container reports (0.0 if it has none)
    context: Optional[np.ndarray] = None   # video backbones: (m, H, W, 3) the frames clips read
    windows: Optional[np.ndarray] = None   # video backbones: (n, clip_length) rows of context


def equally_spaced(total: int, n_frames: int) -> list:
    """The middle frame of each of n_frames equal chunks; every frame when there are fewer."""
    if total <= n_frames:
        return list(range(total))
    return [int((k + 0.5) * total / n_frames) for k in range(n_frames)]


def clip_window(position: int, total: int, length: int, stride: int) -> list:
    """length frames stride apart with position in the middle, clamped to the video's frames."""
    first = position - stride * (length // 2)
    return [min(max(first + stride * j, 0), total - 1) for j in range(length)]


def check_sampling(every_n: Optional[int], n_frames: Optional[int]) -> None:
    if n_frames is not None and n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if n_frames is None and (every_n is None or every_n < 1):
        raise ValueError(f"every_n must be at least 1, got {every_n}")


def sampling_name(every_n: Optional[int], n_frames: Optional[int]) -> str:
    return f"n_frames={n_frames}" if n_frames is not None else f"every_n={every_n}"


def parse_sampling(text: Optional[str]) -> tuple:
    """sampling_name's inverse; (None, None) when nothing is recorded."""
    match = re.fullmatch(r"(every_n|n_frames)=(\d+)", text or "")
    value = int(match.group(2)) if match else None
    return (value, None) if match and match.group(1) == "every_n" else (None, value)


def read_frames(path: str, every_n: int = DEFAULT_EVERY_N, n_frames: Optional[int] = None,
                short_side: int = 256, clip_length: int = 1, clip_stride: int = 1,
                interpolation: str = "BILINEAR") -> SampledFrames:
    """The sampled RGB frames of one video (with clip_length > 1, the clip around each); raises
    VideoReadError naming a file that is unreadable, damaged or truncated."""
    check_sampling(every_n, n_frames)
    if n_frames is None and clip_length == 1:
        return _decode(path, lambda i: i % every_n == 0, short_side, interpolation)
    # The count the container reports is usually exact; when decoding finds another number
    # (a damaged index, a dropped frame), sample again over the frames really decoded.
    total = _count_frames(path)
    for attempt in range(2):
        positions = equally_spaced(total, n_frames) if n_frames is not None else list(range(0, total, every_n))
        windows = [clip_window(p, total, clip_length, clip_stride) for p in positions]
        decoded = _decode(path, set(positions).union(*windows).__contains__, short_side, interpolation)
        if decoded.total_frames == total:
            row = {index: i for i, index in enumerate(decoded.indices)}
            frames = decoded.frames[[row[p] for p in positions]]
            if clip_length == 1:
                return SampledFrames(frames, positions, total, decoded.fps)
            return SampledFrames(frames, positions, total, decoded.fps, decoded.frames,
                                 np.array([[row[i] for i in w] for w in windows], dtype=np.int64))
        if attempt:
            raise VideoReadError(f"video {path} decodes to {total} frames, then to "
                                 f"{decoded.total_frames}; it is damaged")
        total = decoded.total_frames


def _open(path: str):
    av = require_pyav()
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoReadError(f"cannot open video {path}: {error}") from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"video {path} has no video stream")
    return container


def _count_frames(path: str) -> int:
    av = require_pyav()
    with _open(path) as container:
        stream = container.streams.video[0]
        if stream.frames > 0:
            return stream.frames
        try:  # no count in the header: count the compressed packets, which needs no decoding
            return sum(1 for packet in container.demux(stream) if packet.size > 0)
        except (av.FFmpegError, OSError, ValueError) as error:
            raise VideoReadError(f"cannot read video {path}: {error}") from None


def _decode(path: str, keep: Callable[[int], bool], short_side: int,
            interpolation: str = "BILINEAR") -> SampledFrames:
    av = require_pyav()
    frames, indices, total, size = [], [], 0, None
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # multi-threaded decoding; the frames are the same
        fps = float(stream.average_rate) if stream.average_rate else 0.0
        try:
            for frame in container.decode(stream):
                if keep(total):
                    # One size for the whole clip, should the resolution change midway.
                    scale = short_side / min(frame.width, frame.height)
                    size = size or (max(short_side, round(frame.width * scale)),
                                    max(short_side, round(frame.height * scale)))
                    frames.append(frame.to_ndarray(width=size[0], height=size[1], format="rgb24",
                                                   interpolation=interpolation))
                    indices.append(total)
                total += 1
        except (av.FFmpegError, OSError, ValueError) as error:
            raise VideoReadError(f"cannot decode video {path} (broke off after {total} frames): "
                                 f"{error}") from None
        announced = stream.frames
    if not frames:
        raise VideoReadError(f"video {path} has no decodable frame")
    # A cut-off download often decodes without an error, just shorter than its header says.
    if announced > 0 and total < MIN_DECODED_SHARE * announced:
        raise VideoReadError(f"video {path} is truncated or damaged: {total} frames decoded of the "
                             f"{announced} its header announces")
    return SampledFrames(np.stack(frames), indices, total, fps)
