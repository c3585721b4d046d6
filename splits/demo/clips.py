"""A clip specification: plain JSON that says exactly what happens in every frame (docs/demo.md): {"id", "kind",
"n_frames", "frame_size", "background", "pixel_noise_std", "pixel_noise_seed", "feature_noise_seed", "objects":
[{"colour", "shape", "dissolve_seed", "segments": [{"action", "start", "end", "from", "to"}]}]}, a state being
{"x", "y", "size", "visible"} (centre and half-size in pixels, visible in [0, 1]) that moves linearly from "from" to
"to" over the segment's half-open frame range. Kinds: one_event, two_objects (A acts and leaves, then B), two_actions
(one object, one after the other). render_frames(spec) gives its exact pixels, all frames at once by broadcasting."""
from __future__ import annotations

import math

import numpy as np

from splits.demo.world import (ACTION_GROUPS, ACTION_ORDER, BACKGROUND_GREY_RANGE, BACKGROUND_TINT, COLOUR_ORDER,
                               COLOURS, FRAME_SIZE, MOVE_DIRECTIONS, PIXEL_NOISE_STD, SHAPES)

CLIP_FRAMES = (16, 160)        # drawn log-uniformly: about a quarter are shorter than K = 28
EVENT_FRAMES = (8, 40)         # one action lasts this long, so long clips are mostly empty
MAX_GAP_FRAMES = 20            # empty frames between the two objects of a two_objects clip
KIND_WEIGHTS = {"one_event": 0.5, "two_objects": 0.3, "two_actions": 0.2}

# Geometry as fractions of the frame size, so FRAME_SIZE can change without touching them.
STATIC_HALF_SIZE = (0.09, 0.16)   # objects that neither grow nor shrink
SMALL_HALF_SIZE = (0.08, 0.10)    # the small end of a grow or shrink
GROW_FACTOR = (1.7, 2.1)          # large end = small end x this
MOVE_DISTANCE = (0.30, 0.45)      # how far a move action goes
MARGIN = 1.0                      # pixels kept between an object and the frame border
SEED_LIMIT = 2**31                # seeds stored in the spec, for the renderer's own generators
STATE_KEYS = ("x", "y", "size", "visible")


def state(x: float, y: float, size: float, visible: float = 1.0) -> dict:
    return {"x": float(x), "y": float(y), "size": float(size), "visible": float(visible)}


def segment(action: str, start: int, end: int, start_state: dict, end_state: dict) -> dict:
    if action not in ACTION_ORDER:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTION_ORDER)}")
    if not 0 <= start < end:
        raise ValueError(f"segment {action} needs 0 <= start < end, got {start}, {end}")
    return {"action": action, "start": int(start), "end": int(end), "from": dict(start_state), "to": dict(end_state)}


def object_spec(colour: str, shape: str, segments: list, dissolve_seed: int = 0) -> dict:
    if colour not in COLOUR_ORDER or shape not in SHAPES:
        raise ValueError(f"unknown colour {colour!r} or shape {shape!r}")
    if any(before["end"] != after["start"] for before, after in zip(segments, segments[1:])):
        raise ValueError("the segments of one object must follow each other without gaps")
    return {"colour": colour, "shape": shape, "dissolve_seed": int(dissolve_seed), "segments": list(segments)}


def clip_spec(clip_id: str, kind: str, n_frames: int, objects: list, background=(90, 90, 90),
              pixel_noise_seed: int = 0, feature_noise_seed: int = 0,
              pixel_noise_std: float = PIXEL_NOISE_STD, frame_size: int = FRAME_SIZE) -> dict:
    if any(obj["segments"][-1]["end"] > n_frames for obj in objects):
        raise ValueError(f"clip {clip_id}: an object ends after the clip's {n_frames} frames")
    return {"id": clip_id, "kind": kind, "n_frames": int(n_frames), "frame_size": int(frame_size),
            "background": [int(c) for c in background], "pixel_noise_std": float(pixel_noise_std),
            "pixel_noise_seed": int(pixel_noise_seed), "feature_noise_seed": int(feature_noise_seed),
            "objects": objects}


def object_track(obj: dict, n_frames: int) -> dict:
    """Per-frame arrays x, y, size, visible (float64) and present (bool), each of shape (T,)."""
    track = {key: np.zeros(n_frames) for key in STATE_KEYS}
    track["present"] = np.zeros(n_frames, dtype=bool)
    for seg in obj["segments"]:
        start, end = seg["start"], seg["end"]
        progress = np.arange(end - start) / max(end - start - 1, 1)
        for key in STATE_KEYS:
            track[key][start:end] = seg["from"][key] + progress * (seg["to"][key] - seg["from"][key])
        track["present"][start:end] = True
    return track


def _uniform(rng, bounds, scale: float = 1.0) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) * scale


def _random_object(rng, colour: str, actions_in_time: list, windows: list, frame_size: int) -> dict:
    """An object doing actions_in_time in windows [(start, end), ...], kept inside the frame."""
    size_action = next((a for a in actions_in_time if a in ACTION_GROUPS["size"]), None)
    if size_action is None:
        sizes = [_uniform(rng, STATIC_HALF_SIZE, frame_size)] * 2
    else:
        small = _uniform(rng, SMALL_HALF_SIZE, frame_size)
        large = small * _uniform(rng, GROW_FACTOR)
        sizes = [small, large] if size_action == "grow" else [large, small]
    move_action = next((a for a in actions_in_time if a in MOVE_DIRECTIONS), None)
    distance = _uniform(rng, MOVE_DISTANCE, frame_size) if move_action else 0.0
    dx, dy = (distance * d for d in MOVE_DIRECTIONS.get(move_action, (0, 0)))
    reach = max(sizes) + MARGIN  # the whole path, at the largest size, stays inside the frame
    x, y = (float(rng.uniform(reach - min(d, 0), frame_size - reach - max(d, 0))) for d in (dx, dy))
    current = state(x, y, sizes[0], 0.0 if actions_in_time[0] == "appear" else 1.0)
    segments = []
    for action, (start, end) in zip(actions_in_time, windows):
        after = dict(current)
        if action in MOVE_DIRECTIONS:
            after["x"], after["y"] = current["x"] + dx, current["y"] + dy
        elif action in ACTION_GROUPS["size"]:
            after["size"] = sizes[1]
        else:
            after["visible"] = 1.0 if action == "appear" else 0.0
        segments.append(segment(action, start, end, current, after))
        current = after
    return object_spec(colour, str(rng.choice(SHAPES)), segments, int(rng.integers(SEED_LIMIT)))


def _random_action(rng, groups=tuple(ACTION_GROUPS)) -> str:
    return str(rng.choice(ACTION_GROUPS[str(rng.choice(list(groups)))]))


def _event_windows(rng, n_frames: int, n_events: int, gap_allowed: bool) -> list:
    """n_events consecutive [start, end) windows (with an optional gap between them)."""
    longest = min(EVENT_FRAMES[1], n_frames // n_events)
    lengths = [int(rng.integers(min(EVENT_FRAMES[0], longest), longest + 1)) for _ in range(n_events)]
    spare = n_frames - sum(lengths)
    gap = int(rng.integers(0, min(MAX_GAP_FRAMES, spare) + 1)) if gap_allowed and n_events > 1 else 0
    starts = int(rng.integers(0, spare - gap + 1)) + np.cumsum([0] + [length + gap for length in lengths[:-1]])
    return [(int(s), int(s) + length) for s, length in zip(starts, lengths)]


def sample_clip(rng: np.random.Generator, clip_id: str, frame_size: int = FRAME_SIZE) -> dict:
    """A random clip specification; the same generator state always gives the same clip."""
    n_frames = int(round(math.exp(rng.uniform(math.log(CLIP_FRAMES[0]), math.log(CLIP_FRAMES[1])))))
    kind = str(rng.choice(list(KIND_WEIGHTS), p=list(KIND_WEIGHTS.values())))
    windows = _event_windows(rng, n_frames, 1 if kind == "one_event" else 2, kind == "two_objects")
    if kind == "two_objects":
        colours = rng.choice(COLOUR_ORDER, size=2, replace=False)  # random time order
        objects = [_random_object(rng, str(colour), [_random_action(rng)], [window], frame_size)
                   for colour, window in zip(colours, windows)]
    else:
        colour = str(rng.choice(COLOUR_ORDER))
        if kind == "one_event":
            actions = [_random_action(rng)]
        else:  # from two groups, in an order that can happen: appear first, disappear last, else the random order
            actions = [_random_action(rng, [g]) for g in rng.choice(list(ACTION_GROUPS), size=2, replace=False)]
            actions.sort(key=lambda a: (a != "appear", a == "disappear"))
        objects = [_random_object(rng, colour, actions, windows, frame_size)]
    grey = rng.integers(BACKGROUND_GREY_RANGE[0], BACKGROUND_GREY_RANGE[1] + 1)
    background = grey + rng.integers(-BACKGROUND_TINT, BACKGROUND_TINT + 1, size=3)  # a tint per channel
    return clip_spec(clip_id, kind, n_frames, objects, background, pixel_noise_seed=int(rng.integers(SEED_LIMIT)),
                     feature_noise_seed=int(rng.integers(SEED_LIMIT)), frame_size=frame_size)


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
    """uint8 (T, H, W, 3) frames of a clip specification; identical on every call."""
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
