"""Attention pictures: the frames seen as thumbnails over a heat map of a row per word, a column per frame."""
from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, never a window (servers have no display)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402  (pillow comes with matplotlib)

DPI = 100
CELL, ROW = 44, 22     # pixels per frame column; per word row
LEFT, RIGHT = 110, 80  # word labels; colour bar
TOP, BOTTOM = 50, 60   # title (two lines at most); frame numbers and their label
GAP = 6                # between the thumbnails and the heat map
TITLE_CHAR = 8         # pixels per character of the title, roughly, at its font size


@dataclass
class SeenFrames:
    """The frames one clip's features came from, in the order the model saw them."""
    numbers: list                        # frame number in the video of each real frame (<= K of them)
    images: np.ndarray | None = None  # (len(numbers), H, W, 3) uint8, or None: no thumbnails
    axis_label: str = "frame of the video"  # what the numbers count


def thumbnail_height(images: np.ndarray | None) -> int:
    return 0 if images is None else min(2 * CELL, max(8, round(CELL * images.shape[1] / images.shape[2])))


def picture_size(k: int, n_rows: int, thumb_height: int = 0) -> tuple:
    return LEFT + k * CELL + RIGHT, TOP + (thumb_height + GAP if thumb_height else 0) + n_rows * ROW + BOTTOM


def word_rows(caption: str) -> list:
    return caption.split() + ["<eos>"]


def draw_attention(path: str, attention: np.ndarray, caption: str, frames: SeenFrames,
                   title: str | None = None) -> tuple:
    """The PNG of one caption's attention (n_words + 1, K) at path; its (width, height)."""
    attention = np.asarray(attention, dtype=np.float32)
    words = word_rows(caption)
    n_rows, k = attention.shape
    if n_rows != len(words):
        raise ValueError(f"{n_rows} attention rows, but {caption!r} has {len(words) - 1} words + <eos>")
    n_real = len(frames.numbers)
    if not 0 < n_real <= k:
        raise ValueError(f"{n_real} real frames for an attention map over {k} frames")
    thumb = thumbnail_height(frames.images)
    width, height = picture_size(k, n_rows, thumb)
    figure = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)

    def axes(left, bottom, w, h):  # pixel box -> figure fractions
        return figure.add_axes((left / width, bottom / height, w / width, h / height))

    map_height = n_rows * ROW
    heat = axes(LEFT, BOTTOM, k * CELL, map_height)
    padded = np.arange(k)[None, :].repeat(n_rows, 0) >= n_real
    # scaled to the largest real weight: spread over K frames, weights are far below 1
    colours = matplotlib.colormaps["magma"].with_extremes(bad="white")
    image = heat.imshow(np.ma.masked_array(attention, padded), cmap=colours, interpolation="nearest", aspect="auto",
                        vmin=0.0, vmax=max(float(attention[:, :n_real].max()), 1e-6), extent=(0, k, n_rows, 0))
    heat.set_yticks(np.arange(n_rows) + 0.5, words, fontsize=9)
    heat.set_xticks(np.arange(k) + 0.5, [str(n) for n in frames.numbers] + [""] * (k - n_real), fontsize=7, rotation=90)
    heat.tick_params(length=0)
    if n_real < k:
        heat.text((n_real + k) / 2, n_rows / 2, "padding", ha="center", va="center", fontsize=8, color="grey")
    heat.set_xlabel(frames.axis_label + ("" if n_real == k else f" (last {k - n_real} of {k}: padding)"), fontsize=8)
    colour_bar = figure.colorbar(image, cax=axes(LEFT + k * CELL + 12, BOTTOM, 12, map_height))
    colour_bar.ax.tick_params(labelsize=7)
    colour_bar.set_label("attention", fontsize=8)
    if thumb:
        strip = np.full((thumb, k * CELL, 3), 255, dtype=np.uint8)  # padded frames: white cells
        for column, frame in enumerate(frames.images[:k]):
            small = Image.fromarray(frame).resize((CELL - 2, thumb - 2), Image.BILINEAR)
            strip[1:thumb - 1, column * CELL + 1:(column + 1) * CELL - 1] = np.asarray(small)
        thumbnails = axes(LEFT, BOTTOM + map_height + GAP, k * CELL, thumb)
        thumbnails.imshow(strip, aspect="auto", interpolation="nearest")
        thumbnails.set_axis_off()
    title = textwrap.wrap(title or caption, max(20, (width - LEFT) // TITLE_CHAR), max_lines=2, placeholder=" ...")
    figure.text(LEFT / width, 1 - 8 / height, "\n".join(title), fontsize=10, va="top", ha="left")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return width, height
