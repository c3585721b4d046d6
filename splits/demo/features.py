"""The demo's two feature streams, from the pixels only: APPEARANCE (each frame alone, like the paper's
2-D CNN) and MOTION (frames t-1 and t+1, like its 3-D CNN). Colour, shape, geometry and motion sit in
separate parts that add up, so only looking at the right frames binds colour to shape (docs/demo.md)."""
from __future__ import annotations

import numpy as np

APPEARANCE, MOTION = "Appearance", "Motion"

FOREGROUND_THRESHOLD = 40      # max |pixel - background| over channels; pixel noise std is 6
COLOUR_BINS = 4                # per channel: a 4 x 4 x 4 joint RGB histogram of foreground pixels
SHAPE_GRID, SHAPE_SUPERSAMPLE = 8, 3  # the foreground's bounding box resized to 8 x 8, 3 x 3 samples a cell
OCCUPANCY_GRID = 4             # coarse spatial grid of foreground fractions
PROFILE_BINS = 8               # motion: signed difference summed along rows / columns
MOTION_OFFSET = 1              # motion compares frames t - 1 and t + 1
DIFF_GAIN, RATE_GAIN = 4.0, 10.0  # scale sparse frame differences and relative changes towards unit size
FEATURE_NOISE_STD = 0.02       # Gaussian noise added to every feature


def _parts(**sizes) -> dict:
    """Which part of a vector describes what: consecutive, disjoint slices of the given sizes."""
    ends = dict(zip(sizes, np.cumsum(list(sizes.values())).tolist()))
    return {name: slice(ends[name] - size, ends[name]) for name, size in sizes.items()}


APPEARANCE_PARTS = _parts(colour=COLOUR_BINS ** 3, shape=SHAPE_GRID ** 2, geometry=7, occupancy=OCCUPANCY_GRID ** 2)
APPEARANCE_DIM = APPEARANCE_PARTS["occupancy"].stop                              # 151
MOTION_PARTS = _parts(difference_grid=2 * OCCUPANCY_GRID ** 2, difference_profiles=2 * PROFILE_BINS, rates=7)
MOTION_DIM = MOTION_PARTS["rates"].stop                                          # 55


def _grid_pool(values: np.ndarray, cells: int) -> np.ndarray:
    """(T, H, W) -> (T, cells * cells): the mean of each grid cell."""
    t, h, w = values.shape
    return values.reshape(t, cells, h // cells, cells, w // cells).mean(axis=(2, 4)).reshape(t, -1)


def _bounding_boxes(masks: np.ndarray):
    """Per frame y0, y1, x0, x1 (inclusive) of the foreground; zeros where there is none."""
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    return (rows.argmax(axis=1), rows.shape[1] - 1 - rows[:, ::-1].argmax(axis=1),
            cols.argmax(axis=1), cols.shape[1] - 1 - cols[:, ::-1].argmax(axis=1))


def _colour_histograms(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    t = frames.shape[0]
    bins = (frames.astype(np.int64) * COLOUR_BINS) // 256
    index = (bins[..., 0] * COLOUR_BINS + bins[..., 1]) * COLOUR_BINS + bins[..., 2]
    index = index + np.arange(t)[:, None, None] * COLOUR_BINS ** 3
    counts = np.bincount(index[masks], minlength=t * COLOUR_BINS ** 3).reshape(t, -1)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # colour only, not size


def _shape_descriptors(masks: np.ndarray, boxes) -> np.ndarray:
    samples = SHAPE_GRID * SHAPE_SUPERSAMPLE
    offsets = (np.arange(samples) + 0.5) / samples
    ys, xs = ((low[:, None] + offsets[None] * (high - low + 1)[:, None]).astype(np.int64)
              for low, high in (boxes[:2], boxes[2:]))  # boxes: y0, y1, x0, x1
    crop = masks[np.arange(len(masks))[:, None, None], ys[:, :, None], xs[:, None, :]]
    return _grid_pool(crop.astype(np.float64), SHAPE_GRID)


def _geometry(masks: np.ndarray, boxes) -> np.ndarray:
    """present, area, centroid x and y, box width and height (fractions of the frame), fill ratio."""
    t, h, w = masks.shape
    y0, y1, x0, x1 = boxes
    area = masks.sum(axis=(1, 2)).astype(np.float64)
    present = area > 0
    cy = (masks.sum(axis=2) * (np.arange(h) + 0.5)).sum(axis=1) / np.maximum(area, 1)
    cx = (masks.sum(axis=1) * (np.arange(w) + 0.5)).sum(axis=1) / np.maximum(area, 1)
    box_w, box_h = (x1 - x0 + 1) * present, (y1 - y0 + 1) * present
    fill = area / np.maximum(box_w * box_h, 1)
    return np.stack([present, area / (h * w), cx / w * present, cy / h * present,
                     box_w / w, box_h / h, fill], axis=1).astype(np.float64)


def motion_features(masks: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """(T, MOTION_DIM) from frames t-1 and t+1 (clamped at the ends), colour-blind: the signed foreground
    difference on a grid (+ and - parts) and as column and row profiles, then per-frame rates of the
    centroid, box width and height, area, fill ratio and presence."""
    t, h, w = masks.shape
    before, after = np.maximum(np.arange(t) - MOTION_OFFSET, 0), np.minimum(np.arange(t) + MOTION_OFFSET, t - 1)
    span = np.maximum(after - before, 1).astype(np.float64)
    diff = masks[after].astype(np.float64) - masks[before].astype(np.float64)
    columns = diff.sum(axis=1).reshape(t, PROFILE_BINS, w // PROFILE_BINS).sum(axis=2) / h
    rows = diff.sum(axis=2).reshape(t, PROFILE_BINS, h // PROFILE_BINS).sum(axis=2) / w
    differences = np.concatenate([_grid_pool(np.maximum(diff, 0), OCCUPANCY_GRID),
                                  _grid_pool(np.maximum(-diff, 0), OCCUPANCY_GRID), columns, rows], axis=1) * DIFF_GAIN
    present, area = geometry[:, 0], geometry[:, 1]
    both = present[before] * present[after]  # rates only where the object is there at both ends
    mean_area = np.maximum((area[before] + area[after]) / 2, 1.0 / (h * w))
    d_present, d_area, d_cx, d_cy, d_width, d_height, d_fill = (geometry[after] - geometry[before]).T
    rates = np.stack([d_cx * w / span * both, d_cy * h / span * both, d_width * w / span * both,
                      d_height * h / span * both, d_area / mean_area / span * both * RATE_GAIN,
                      d_fill / span * both * RATE_GAIN, d_present], axis=1)
    return np.concatenate([differences, rates], axis=1)


def clip_features(frames: np.ndarray, feature_noise_seed: int) -> dict:
    """{APPEARANCE: float32 (T, 151), colour histogram | shape 8x8 | geometry | occupancy grid per frame,
    MOTION: float32 (T, 55)} for uint8 frames (T, H, W, 3)."""
    t, h, w, _ = frames.shape
    pixels = frames.reshape(t, h * w, 3).astype(np.int16)
    background = np.median(pixels, axis=1).astype(np.int16)  # objects cover well under half a frame
    masks = (np.abs(pixels - background[:, None, :]).max(axis=2) > FOREGROUND_THRESHOLD).reshape(t, h, w)
    boxes = _bounding_boxes(masks)
    geometry = _geometry(masks, boxes)
    appearance = np.concatenate([_colour_histograms(frames, masks), _shape_descriptors(masks, boxes), geometry,
                                 _grid_pool(masks.astype(np.float64), OCCUPANCY_GRID)], axis=1)
    noise = np.random.default_rng(feature_noise_seed)
    return {name: (values + noise.normal(0.0, FEATURE_NOISE_STD, values.shape)).astype(np.float32)
            for name, values in ((APPEARANCE, appearance), (MOTION, motion_features(masks, geometry)))}
