"""The built-in demo corpus (splits/Demo.py, splits/demo/): small builds, CPU only, seconds."""
import json
import os
import re

import h5py
import numpy as np
import pytest

import config as config_module
from splits.Demo import ANNOTATIONS_FILE, BACKBONES, DEMO_CORPUS, build_demo, main
from splits.demo.captions import CAPTIONS_PER_CLIP, PARTICIPLE, PRESENT, SHAPE_WORDS, describe
from splits.demo.clips import (clip_spec, object_spec, object_track, render_frames, sample_clip, segment,
                               state)
from splits.demo.features import (APPEARANCE, APPEARANCE_DIM, APPEARANCE_PARTS, MOTION, MOTION_DIM,
                                  clip_features)
from splits.demo.world import ACTION_ORDER, COLOUR_ORDER, FRAME_SIZE
from splits.layout import corpus_paths, read_prepared

SMALL_SIZES = (60, 10, 20)
SEED = 7
K = 28  # frames the model samples per clip


def small_config(root):
    return config_module.build("Demo", **{"corpus.data_root": str(root)})


def load_clips(paths):
    with open(os.path.join(paths.annotations, ANNOTATIONS_FILE), encoding="utf-8") as handle:
        return json.load(handle)["clips"]


def load_features(paths, backbone):
    with h5py.File(paths.feature_file(DEMO_CORPUS, backbone), "r") as features:
        return {key: features[key][()] for key in features}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    paths = build_demo(small_config(root), split_sizes=SMALL_SIZES, seed=SEED, show_progress=False)
    return root, paths, load_clips(paths)


# ---------------------------------------------------------------- the build
def test_build_writes_both_backbones_and_prepared_splits(built):
    root, paths, clips = built
    assert paths.root == os.path.join(str(root), DEMO_CORPUS)
    appearance, motion = load_features(paths, APPEARANCE), load_features(paths, MOTION)
    assert set(appearance) == set(motion) == {clip["id"] for clip in clips}
    for clip in clips:
        n_frames = clip["spec"]["n_frames"]
        assert appearance[clip["id"]].shape == (n_frames, APPEARANCE_DIM)
        assert motion[clip["id"]].shape == (n_frames, MOTION_DIM)
        assert appearance[clip["id"]].dtype == motion[clip["id"]].dtype == np.float32
    for split, size in zip(("train", "val", "test"), SMALL_SIZES):
        record = read_prepared(paths, split, "python -m splits.Demo")
        assert len(record["videos"]) == size
        assert {name: meta["dim"] for name, meta in record["backbones"].items()} == \
            {APPEARANCE: APPEARANCE_DIM, MOTION: MOTION_DIM}
        for backbone in BACKBONES:
            with h5py.File(paths.split_features(split, backbone), "r") as links:
                for video in record["videos"]:
                    assert links[video["id"]].shape[0] == video["n_frames"]


def test_existing_build_is_skipped_unless_forced(built):
    root, paths, _ = built
    feature_file = paths.feature_file(DEMO_CORPUS, APPEARANCE)
    before = os.stat(feature_file).st_mtime_ns
    build_demo(small_config(root), split_sizes=SMALL_SIZES, seed=SEED, show_progress=False)
    assert os.stat(feature_file).st_mtime_ns == before


def test_command_line_build(tmp_path):
    main(["--corpus.data_root", str(tmp_path), "--split_sizes", "4,2,3", "--seed", "3"])
    paths = corpus_paths(str(tmp_path), DEMO_CORPUS)
    assert [len(read_prepared(paths, s, "")["videos"]) for s in ("train", "val", "test")] == [4, 2, 3]


def test_same_seed_same_corpus_other_seed_another(built, tmp_path):
    _, paths, clips = built
    again = build_demo(small_config(tmp_path / "same"), split_sizes=SMALL_SIZES, seed=SEED,
                       show_progress=False)
    other = build_demo(small_config(tmp_path / "other"), split_sizes=SMALL_SIZES, seed=SEED + 1,
                       show_progress=False)
    assert load_clips(again) == clips
    for backbone in BACKBONES:
        first, second = load_features(paths, backbone), load_features(again, backbone)
        assert all(np.array_equal(first[key], second[key]) for key in first)
    other_clips = load_clips(other)
    assert [c["captions"] for c in other_clips] != [c["captions"] for c in clips]
    assert [c["spec"]["n_frames"] for c in other_clips] != [c["spec"]["n_frames"] for c in clips]


def test_render_frames_reproduces_the_frames_behind_the_features(built):
    _, paths, clips = built
    stored = {backbone: load_features(paths, backbone) for backbone in BACKBONES}
    for clip in clips[:15]:  # specs read back from JSON, as someone drawing attention would
        frames = render_frames(clip["spec"])
        assert frames.dtype == np.uint8 and frames.shape == (clip["spec"]["n_frames"], FRAME_SIZE,
                                                             FRAME_SIZE, 3)
        assert np.array_equal(frames, render_frames(clip["spec"]))
        recomputed = clip_features(frames, clip["spec"]["feature_noise_seed"])
        for backbone in BACKBONES:
            assert np.array_equal(recomputed[backbone], stored[backbone][clip["id"]])


# ---------------------------------------------------------------- clips
def test_clip_lengths_span_both_sides_of_k(built):
    lengths = [clip["spec"]["n_frames"] for clip in built[2]]
    assert min(lengths) < K < max(lengths)
    assert min(lengths) >= 16 and max(lengths) <= 160


def test_sampled_clips_mix_kinds_short_events_and_stay_in_frame():
    specs = [sample_clip(np.random.default_rng([11, i]), f"c{i}") for i in range(400)]
    two_events = np.mean([spec["kind"] != "one_event" for spec in specs])
    assert 0.35 < two_events < 0.65
    covered = [sum(s["end"] - s["start"] for o in spec["objects"] for s in o["segments"]) / spec["n_frames"]
               for spec in specs]
    assert min(covered) < 0.25  # some events fill only a small part of a long clip
    for spec in specs:
        for obj in spec["objects"]:
            track = object_track(obj, spec["n_frames"])
            on = track["present"]
            for centre in ("x", "y"):
                assert np.all(track[centre][on] - track["size"][on] >= 0)
                assert np.all(track[centre][on] + track["size"][on] <= FRAME_SIZE)
        if spec["kind"] == "two_objects":
            assert spec["objects"][0]["colour"] != spec["objects"][1]["colour"]


# ---------------------------------------------------------------- captions
def _first_position(caption, phrases):
    found = [m.start() for p in phrases for m in re.finditer(rf"\b{re.escape(p)}\b", caption)]
    return min(found) if found else None


def test_captions_are_many_distinct_and_short(built):
    for clip in built[2]:
        assert len(clip["captions"]) == CAPTIONS_PER_CLIP >= 5
        assert len(set(clip["captions"])) == len(clip["captions"])
        assert all(len(caption.split()) < 20 for caption in clip["captions"])


def test_two_event_captions_bind_attributes_in_content_order(built):
    kinds = {clip["category"] for clip in built[2]}
    assert {"two_objects", "two_actions"} <= kinds
    for clip in built[2]:
        objects = clip["spec"]["objects"]
        if clip["category"] == "two_objects":
            in_order = sorted(objects, key=lambda o: COLOUR_ORDER.index(o["colour"]))
            for caption in clip["captions"]:
                clauses = caption.split(" and ")  # one clause per object, in palette order
                assert len(clauses) == 2, caption
                for clause, obj in zip(clauses, in_order):
                    nouns = [f"{obj['colour']} {word}" for word in SHAPE_WORDS[obj["shape"]]]
                    action = obj["segments"][0]["action"]
                    noun = _first_position(clause, nouns)  # the colour next to its own shape
                    verb = _first_position(clause, PRESENT[action] + PARTICIPLE[action])
                    assert noun is not None and verb is not None and noun < verb, caption
        elif clip["category"] == "two_actions":
            actions = sorted((s["action"] for s in objects[0]["segments"]), key=ACTION_ORDER.index)
            for caption in clip["captions"]:
                where = [_first_position(caption, PRESENT[a] + PARTICIPLE[a]) for a in actions]
                assert None not in where and where[0] < where[1], caption


def _red_square_then_blue_circle(square_colour, circle_colour, square_first=True, noise_seed=3):
    """A square moving left for 20 frames and a circle growing for 20 frames, one after the other."""
    square_window, circle_window = ((0, 20), (20, 40)) if square_first else ((20, 40), (0, 20))
    square = object_spec(square_colour, "square", [segment("move_left", *square_window,
                                                           state(22, 12, 4), state(9, 12, 4))], 1)
    circle = object_spec(circle_colour, "circle", [segment("grow", *circle_window,
                                                           state(16, 18, 3), state(16, 18, 6.5))], 2)
    return clip_spec("binding", "two_objects", 40, [square, circle], background=(90, 90, 90),
                     pixel_noise_seed=noise_seed, feature_noise_seed=noise_seed + 1)


def test_captions_do_not_depend_on_which_event_came_first():
    forward = _red_square_then_blue_circle("red", "blue", square_first=True)
    backward = _red_square_then_blue_circle("red", "blue", square_first=False)
    assert describe(forward, np.random.default_rng(5)) == describe(backward, np.random.default_rng(5))
    assert describe(forward, np.random.default_rng(5))[0] == "a red square moves left and a blue circle grows"
    swapped = _red_square_then_blue_circle("blue", "red")
    assert describe(swapped, np.random.default_rng(5))[0] == "a red circle grows and a blue square moves left"


# ---------------------------------------------------------------- features
def test_mean_pooling_cannot_bind_colour_to_shape_but_frames_can():
    first, second = (_red_square_then_blue_circle("red", "blue", noise_seed=3),
                     _red_square_then_blue_circle("blue", "red", noise_seed=30))  # other noise
    red_square = clip_features(render_frames(first), first["feature_noise_seed"])
    blue_square = clip_features(render_frames(second), second["feature_noise_seed"])
    for backbone in BACKBONES:
        difference_of_means = np.abs(red_square[backbone].mean(0) - blue_square[backbone].mean(0)).max()
        assert difference_of_means < 0.03, backbone  # the same clip summary, up to noise
    colour = APPEARANCE_PARTS["colour"]
    per_frame = np.abs(red_square[APPEARANCE][:, colour] - blue_square[APPEARANCE][:, colour]).sum(1)
    assert np.all(per_frame[:40] > 1.5)  # each frame shows which colour the square has
    # motion never sees colour: identical up to the feature noise
    assert np.abs(red_square[MOTION] - blue_square[MOTION]).max() < 0.2


def test_feature_parts_separate_shape_and_motion():
    clip = _red_square_then_blue_circle("red", "blue")
    appearance, motion = (clip_features(render_frames(clip), clip["feature_noise_seed"])[name]
                          for name in (APPEARANCE, MOTION))
    shape = APPEARANCE_PARTS["shape"]
    square, circle = appearance[5, shape], appearance[30, shape]
    assert np.abs(square - circle).sum() > 3  # the circle's corners are empty
    velocity_x = motion[:, -7]
    assert velocity_x[2:18].mean() < -0.4  # the square moves left, about 0.7 pixels a frame
    assert abs(velocity_x[22:38].mean()) < 0.1  # the growing circle stays where it is
    box_growth = motion[:, -5]
    assert box_growth[22:38].mean() > 0.1 and abs(box_growth[2:18].mean()) < 0.05
