"""Decode a video with PyAV and keep the sampled frames, scaled so the short side is fixed.

Two samplings: every Nth frame (frames 0, N, 2N, ...; N = 5 is the usual convention for
MSVD / MSR-VTT feature files), or K frames equally spaced over the whole clip (the clip cut
into K equal chunks, the middle frame of each). Frames are scaled by libswscale while they are
converted to RGB, so a long or high-resolution video never sits in memory at full size.

A video backbone reads a clip of frames around each sampled frame (clip_length frames,
clip_stride apart, the sampled frame in the middle, repeated at the video's ends), so that it
gives one feature per sampled frame, as an image backbone does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from utils import DataError

# Headers may miscount a few frames; fewer than this share decoded means the file is cut off.
MIN_DECODED_SHARE = 0.9


def require_pyav():
    """The av module; a clear error where PyAV is missing (only reading video files needs it)."""
    try:
        import av
    except ImportError as error:
        raise DataError(f"reading video files needs PyAV ({error}): `pip install av` "
                        "(it is in requirements.txt)") from None
    return av


class VideoReadError(RuntimeError):
    """A video that cannot be opened or decoded; the message names the file."""


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


def sampled_positions(total: int, every_n: Optional[int], n_frames: Optional[int]) -> list:
    """The frames a sampling keeps of a video of total frames; n_frames wins over every_n."""
    return equally_spaced(total, n_frames) if n_frames is not None else list(range(0, total, every_n))


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
    """How frames were chosen, as stored in the feature file ('every_n=5' or 'n_frames=28')."""
    return f"n_frames={n_frames}" if n_frames is not None else f"every_n={every_n}"


def parse_sampling(text: Optional[str]) -> tuple:
    """sampling_name's inverse: 'every_n=5' -> (5, None), 'n_frames=28' -> (None, 28),
    anything else (nothing recorded) -> (None, None)."""
    match = re.fullmatch(r"(every_n|n_frames)=(\d+)", text or "")
    if not match:
        return None, None
    value = int(match.group(2))
    return (value, None) if match.group(1) == "every_n" else (None, value)


def read_frames(path: str, every_n: int = 5, n_frames: Optional[int] = None,
                short_side: int = 256, clip_length: int = 1, clip_stride: int = 1,
                interpolation: str = "BILINEAR") -> SampledFrames:
    """The sampled RGB frames of one video; n_frames (K equally spaced) wins over every_n.

    clip_length > 1: also the clip around each sampled frame (SampledFrames.context, .windows).
    interpolation: libswscale's scaling filter (BILINEAR, BICUBIC, ...).

    Raises VideoReadError naming the file when it cannot be opened, has no video stream, has
    no decodable frame, breaks off with a decoding error, or decodes to far fewer frames than
    its header announces (a truncated or damaged file).
    """
    check_sampling(every_n, n_frames)
    if n_frames is None and clip_length == 1:
        return _decode(path, lambda i: i % every_n == 0, short_side, interpolation)
    # The count the container reports is usually exact; when decoding finds another number
    # (a damaged index, a dropped frame), sample again over the frames really decoded.
    total = _count_frames(path)
    sampled = _decode_clips(path, total, every_n, n_frames, short_side, clip_length, clip_stride,
                            interpolation)
    if sampled.total_frames != total:
        total = sampled.total_frames
        sampled = _decode_clips(path, total, every_n, n_frames, short_side, clip_length, clip_stride,
                                interpolation)
        if sampled.total_frames != total:
            raise VideoReadError(f"video {path} decodes to {total} frames, then to "
                                 f"{sampled.total_frames}; it is damaged")
    return sampled


def _decode_clips(path: str, total: int, every_n, n_frames, short_side: int, clip_length: int,
                  clip_stride: int, interpolation: str) -> SampledFrames:
    """The sampled frames of a video of (about) total frames, with their clips when clip_length > 1."""
    positions = sampled_positions(total, every_n, n_frames)
    windows = [clip_window(p, total, clip_length, clip_stride) for p in positions]
    needed = set(positions).union(*windows)
    decoded = _decode(path, needed.__contains__, short_side, interpolation)
    if decoded.total_frames != total:       # the caller samples again over the real count
        return decoded
    row = {index: i for i, index in enumerate(decoded.indices)}
    frames = decoded.frames[[row[p] for p in positions]]
    if clip_length == 1:
        return SampledFrames(frames, positions, total, decoded.fps)
    return SampledFrames(frames, positions, total, decoded.fps, decoded.frames,
                         np.array([[row[i] for i in window] for window in windows], dtype=np.int64))


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
                    size = size or _scaled_size(frame.width, frame.height, short_side)
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


def _scaled_size(width: int, height: int, short_side: int) -> tuple:
    scale = short_side / min(width, height)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))
