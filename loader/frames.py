"""Choosing K frames from a clip: equally spaced over the WHOLE clip, as in the paper."""
from __future__ import annotations

import numpy as np


def sample_frame_indices(n_frames: int, k: int) -> np.ndarray:
    """The middle frame of each of k equal chunks; a clip of at most k frames keeps them all."""
    if n_frames <= 0:
        raise ValueError("a clip needs at least one frame")
    if n_frames <= k:
        return np.arange(n_frames)
    edges = np.linspace(0.0, n_frames, k + 1)
    return ((edges[:-1] + edges[1:]) / 2).astype(np.int64)


def pad_frames(frames: np.ndarray, k: int) -> tuple:
    """(k, D) features with zero rows after the real ones, and the (k,) mask of real rows."""
    padded = np.zeros((k, frames.shape[1]), dtype=np.float32)
    padded[:len(frames)] = frames
    return padded, np.arange(k) < len(frames)
