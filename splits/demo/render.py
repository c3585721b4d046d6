"""render_frames(spec): the exact pixels of a clip, all frames at once by broadcasting."""
from __future__ import annotations

import numpy as np

from splits.demo.clips import object_track
from splits.demo.world import COLOURS


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Which pixels a shape covers, from offsets to its centre and its half-size (one bounding box for all)."""
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= size
    if shape == "circle":
        return dx * dx + dy * dy <= size * size
    if shape == "triangle":  # apex up, base at the bottom
        return (np.abs(dy) <= size) & (2 * np.abs(dx) <= dy + size)
    raise ValueError(f"unknown shape {shape!r}")


def render_frames(spec: dict) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of a clip specification (see clips.py); identical on every call."""
    n_frames, size = spec["n_frames"], spec["frame_size"]
    image = np.full((n_frames, size, size, 3), np.asarray(spec["background"], dtype=np.float32), dtype=np.float32)
    centres = np.arange(size) + 0.5  # pixel centres
    for obj in spec["objects"]:
        track = object_track(obj, n_frames)
        dx = centres[None, None, :] - track["x"][:, None, None]
        dy = centres[None, :, None] - track["y"][:, None, None]
        covered = shape_mask(obj["shape"], dx, dy, track["size"][:, None, None])
        # appear / disappear dissolve: a pixel shows once the visible fraction passes its threshold
        dissolve = np.random.default_rng(obj["dissolve_seed"]).random((size, size))
        shown = (dissolve[None] < track["visible"][:, None, None]) & track["present"][:, None, None]
        image[covered & shown] = np.asarray(COLOURS[obj["colour"]], dtype=np.float32)
    noise = np.random.default_rng(spec["pixel_noise_seed"]).standard_normal(image.shape, dtype=np.float32)
    image += spec["pixel_noise_std"] * noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
