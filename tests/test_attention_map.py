"""Attention pictures: pixel size, thumbnails of demo and real clips, word rows, padded frames."""
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="attention pictures need matplotlib")
from PIL import Image  # noqa: E402  (pillow comes with matplotlib)

import config as config_module
from captioning.attention_map import (BOTTOM, CELL, GAP, LEFT, ROW, TOP, SeenFrames, draw_attention,
                           picture_size, thumbnail_height, word_rows)
from loader.frames import sample_frame_indices
from splits.Demo import build_demo
from splits.demo import render_frames
from splits.layout import corpus_paths, write_prepared
from captioning.split_frames import THUMB_SHORT_SIDE, SplitFrames

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO / "tests" / "fixtures" / "videos"
K = 28
WHITE = (255, 255, 255)


def one_hot_attention(n_rows, n_real, k=K):
    """Row r looks only at frame r mod n_real: each word's bright cell is known."""
    attention = np.zeros((n_rows, k), np.float32)
    attention[np.arange(n_rows), np.arange(n_rows) % n_real] = 1.0
    return attention


def pixel(image, row, column, strip):
    """RGB at the centre of heat-map cell (row, column); rows count from the top."""
    return image.getpixel((LEFT + column * CELL + CELL // 2, TOP + strip + row * ROW + ROW // 2))


def strip_pixel(image, column, thumb):
    return image.getpixel((LEFT + column * CELL + CELL // 2, TOP + thumb // 2))


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("data"))
    config = config_module.build("Demo", **{"corpus.data_root": root})
    build_demo(config, split_sizes=(2, 2, 6), show_progress=False)
    return config


@pytest.fixture(scope="module")
def msvd_config(tmp_path_factory):
    """A one-video MSVD corpus: vid1025 stored as its YouTube clip id, every 10th of its 120 frames."""
    root = str(tmp_path_factory.mktemp("msvd"))
    paths = corpus_paths(root, "MSVD")
    os.makedirs(paths.annotations)
    os.makedirs(paths.features)
    shutil.copy(REPO / "data" / "MSVD" / "annotations" / "youtube_mapping.txt", paths.annotations)
    with h5py.File(paths.feature_file("MSVD", "Fake"), "w") as features:
        features.attrs["sampling"] = "every_n=10"
        features["WTf5EgVY5uU_124_128"] = np.zeros((12, 4), np.float32)
    write_prepared(paths, "MSVD", "test", [{"id": "vid1025", "captions": ["a woman cooks"]}], ["Fake"],
                   lambda f, vid: "WTf5EgVY5uU_124_128")
    return config_module.build("MSVD", **{"corpus.data_root": root, "features.backbones": ["Fake"]})


def test_demo_clip_picture_shows_the_rendered_frames_the_model_saw(demo_config, tmp_path):
    record = corpus_paths(demo_config.corpus.data_root, "Demo").split_json("test")
    videos = json.loads(Path(record).read_text())["videos"]
    video = max(videos, key=lambda v: v["n_frames"])          # longer than K: every column real
    assert video["n_frames"] > K
    frames = SplitFrames(demo_config, "test").frames(video["id"], video["n_frames"])
    chosen = sample_frame_indices(video["n_frames"], K)
    assert frames.numbers == chosen.tolist()
    clips = json.loads(Path(demo_config.corpus.data_root, "Demo", "annotations", "clips.json").read_text())
    spec = next(c["spec"] for c in clips["clips"] if c["id"] == video["id"])
    assert np.array_equal(frames.images, render_frames(spec)[chosen])

    caption = "a red square moves left"
    path = tmp_path / "demo.png"
    size = draw_attention(str(path), one_hot_attention(6, K), caption, frames)
    thumb = thumbnail_height(frames.images)
    assert thumb == CELL                                       # square frames, square thumbnails
    assert Image.open(path).size == size == picture_size(K, 6, thumb)
    assert size == (LEFT + K * CELL + 80, TOP + thumb + GAP + 6 * ROW + BOTTOM)


def test_real_clip_thumbnails_padding_and_word_rows(msvd_config, tmp_path):
    notes = []
    frames = SplitFrames(msvd_config, "test", str(VIDEOS), report=notes.append).frames("vid1025", 12)
    assert notes == []
    assert frames.numbers == list(range(0, 120, 10))           # 12 < K frames: all of them, in order
    assert frames.images.shape == (12, THUMB_SHORT_SIDE, 85, 3)  # 320x240 scaled to a 64-pixel short side

    caption = "a woman is cooking"
    rows = len(word_rows(caption))
    assert word_rows(caption) == ["a", "woman", "is", "cooking", "<eos>"]
    path = tmp_path / "real.png"
    draw_attention(str(path), one_hot_attention(rows, 12), caption, frames)
    thumb = thumbnail_height(frames.images)
    assert thumb == round(CELL * 64 / 85)
    image = Image.open(path).convert("RGB")
    assert image.size == picture_size(K, rows, thumb)
    strip = thumb + GAP
    for row in range(rows):                                     # each word's own frame is the brightest
        bright = pixel(image, row, row, strip)
        assert sum(bright) > 500 and bright != WHITE
        assert sum(pixel(image, row, (row + 1) % 12, strip)) < 100
    for column in (12, 20, K - 1):                             # padding: empty in both rows of the picture
        assert strip_pixel(image, column, thumb) == WHITE
        assert pixel(image, rows - 1, column, strip) == WHITE
    assert strip_pixel(image, 0, thumb) != WHITE


def test_picture_without_thumbnails(msvd_config, tmp_path):
    notes = []
    frames = SplitFrames(msvd_config, "test", report=notes.append).frames("vid1025", 12)
    assert frames.images is None and frames.numbers == list(range(0, 120, 10))
    assert any("without thumbnails" in note for note in notes)
    path = tmp_path / "plain.png"
    size = draw_attention(str(path), one_hot_attention(3, 12), "a woman", frames)
    assert Image.open(path).size == size == picture_size(K, 3) == (LEFT + K * CELL + 80,
                                                                   TOP + 3 * ROW + BOTTOM)


def test_frames_of_another_cut_of_the_video_give_no_thumbnails(msvd_config):
    notes = []
    frames = SplitFrames(msvd_config, "test", str(VIDEOS), report=notes.append).frames("vid1025", 13)
    assert frames.images is None and "another cut" in notes[0]


def test_rows_must_match_the_caption(tmp_path):
    frames = SeenFrames([0, 5, 10])
    with pytest.raises(ValueError, match="2 words"):
        draw_attention(str(tmp_path / "x.png"), np.full((4, 3), 1 / 3), "a dog", frames)
    with pytest.raises(ValueError, match="real frames"):
        draw_attention(str(tmp_path / "x.png"), np.full((3, 2), 1 / 2), "a dog", frames)
    heights = [picture_size(K, n)[1] for n in (2, 3, 4)]
    assert heights[1] - heights[0] == heights[2] - heights[1] == ROW
