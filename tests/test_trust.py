"""Every number a researcher gets is the one asked for: run.py keeps train.py's files and scores
the features and corpus the checkpoint learned on; the demo corpus is a fixed thing; a split is
checked when it is read; a stopped run and a bad name each say what happened and the fix."""
import json
import os
import sys

import h5py
import numpy as np
import pytest

import config as config_module
import run as run_module
import train as train_module
from loader.dataset import load_split
from models import checkpoints
from splits.Demo import DEMO_SEED, build_demo
from splits.layout import corpus_paths, prepare_command
from tests import small_demo
from tests.devices import TRAIN_DEVICE
from tests.small_demo import build_small_demo, run_py, single_thread
from utils import DataError

SMALL = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
         "loader.batch_size": 20, "loader.eval_batch_size": 16, "eval.beam_size": 2,
         "eval.max_len": 8, "train.epochs": 1, "train.device": TRAIN_DEVICE,
         "eval.metrics": [], "train.select_metric": "CIDEr-D"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(config, run folder) of a one-epoch run on a small demo corpus."""
    root = build_small_demo(tmp_path_factory, (30, 6, 6))
    config = small_demo.small_config(SMALL, root, tmp_path_factory.mktemp("runs"))
    with single_thread():
        train_module.train(config)
    return config, os.path.join(config.train.run_root, train_module.run_id(config))


def test_run_py_writes_beside_train_py_and_says_what_made_its_scores(trained, capsys):
    config, run_dir = trained
    best = os.path.join(run_dir, "best.pt")
    before = open(os.path.join(run_dir, "test_scores.json")).read()
    assert json.loads(before)["made_by"] == {**json.loads(before)["made_by"], "search": "beam", "beam_size": 2,
                                             "checkpoint": os.path.abspath(best)}
    status, _ = run_py(capsys, "--checkpoint", best, "--eval.search", "greedy")
    assert status == 0
    assert open(os.path.join(run_dir, "test_scores.json")).read() == before      # train.py's, untouched
    out = os.path.join(run_dir, "eval", "test_greedy_max_len8")
    made_by = json.load(open(os.path.join(out, "test_scores.json")))["made_by"]
    assert made_by["search"] == "greedy" and made_by["split"] == "test"
    assert made_by["checkpoint"] == os.path.abspath(best) and made_by["max_len"] == 8
    assert os.path.isfile(os.path.join(out, "test_predictions.json"))
    status, _ = run_py(capsys, "--checkpoint", best, "--split", "val", "--eval.beam_size", 3)
    assert status == 0 and os.path.isfile(os.path.join(run_dir, "eval", "val_beam_beam_size3_max_len8", "val_scores.json"))


def test_predictions_without_scores_leave_no_older_scores_beside_them(trained, tmp_path, capsys):
    _, run_dir = trained
    best = os.path.join(run_dir, "best.pt")
    assert run_py(capsys, "--checkpoint", best, "--out", tmp_path)[0] == 0
    assert (tmp_path / "test_scores.json").exists()
    assert run_py(capsys, "--checkpoint", best, "--out", tmp_path, "--train.select_metric", "loss")[0] == 0
    assert (tmp_path / "test_predictions.json").exists() and not (tmp_path / "test_scores.json").exists()


def test_checkpoint_records_its_backbones_sizes_and_corpus(trained):
    config, run_dir = trained
    payload = checkpoints.load(os.path.join(run_dir, "best.pt"))
    assert [(b["name"], b["feature_size"]) for b in payload["backbones"]] == [("Appearance", 151), ("Motion", 55)]
    assert payload["corpus"]["data_root"] == os.path.abspath(config.corpus.data_root)
    assert set(payload["corpus"]["splits"]) == {"train", "val", "test"}
    json.dumps({key: payload[key] for key in ("backbones", "corpus")})          # plain JSON entries


def test_backbones_in_another_order_are_refused(trained, capsys):
    _, run_dir = trained
    status, err = run_py(capsys, "--checkpoint", os.path.join(run_dir, "best.pt"),
                         "--features.backbones", "Motion,Appearance")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "trained on the backbones Appearance,Motion (in this order)" in err


def test_a_relative_data_root_is_the_one_named_at_training_time(trained, tmp_path, monkeypatch, capsys):
    config, run_dir = trained
    payload = checkpoints.load(os.path.join(run_dir, "best.pt"))
    root = config.corpus.data_root
    monkeypatch.chdir(os.path.dirname(root))
    payload["config"]["corpus"]["data_root"] = os.path.basename(root)          # as trained from there
    payload["corpus"]["data_root"] = root
    relative = tmp_path / "relative.pt"
    checkpoints.save(str(relative), payload)
    monkeypatch.chdir(tmp_path)                                                 # run.py from elsewhere
    assert run_py(capsys, "--checkpoint", relative, "--out", tmp_path / "out")[0] == 0
    assert not (tmp_path / os.path.basename(root)).exists()                     # nothing built here
    payload["corpus"]["data_root"] = str(tmp_path / "moved")
    checkpoints.save(str(relative), payload)
    status, err = run_py(capsys, "--checkpoint", relative)
    assert status == 2 and "is not there; give --corpus.data_root DIR" in err
    assert not (tmp_path / os.path.basename(root)).exists()


def test_run_py_never_builds_a_corpus_and_refuses_another_one(trained, tmp_path, capsys):
    _, run_dir = trained
    best = os.path.join(run_dir, "best.pt")
    status, err = run_py(capsys, "--checkpoint", best, "--corpus.data_root", tmp_path)
    assert status == 2 and "does not exist; prepare the corpus first" in err
    assert not (tmp_path / "Demo").exists()
    other = config_module.build("Demo", **{"corpus.data_root": str(tmp_path)})
    build_demo(other, split_sizes=(30, 6, 6), seed=DEMO_SEED + 1, show_progress=False)
    status, err = run_py(capsys, "--checkpoint", best, "--corpus.data_root", tmp_path)
    assert status == 2 and "holds other videos or captions than the one" in err
    assert "--seed 1235 --split_sizes 30,6,6 --force" in err


def test_the_demo_corpus_has_its_own_seed_and_the_hint_repeats_it(tmp_path):
    config = config_module.build("Demo", **{"corpus.data_root": str(tmp_path), "train.seed": 99})
    build_demo(config, split_sizes=(3, 2, 2), show_progress=False)
    record = json.load(open(corpus_paths(str(tmp_path), "Demo").annotations + "/clips.json"))
    assert record["seed"] == DEMO_SEED == config_module.Config().train.seed
    assert prepare_command(config).endswith(f"--seed {DEMO_SEED} --split_sizes 3,2,2 --force")


def test_extending_an_early_stopped_run_says_why_nothing_trains(trained, tmp_path, capsys):
    config, run_dir = trained
    stopped = small_demo.small_config({**SMALL, "train.early_stop_patience": 1}, config.corpus.data_root,
                                      tmp_path / "runs")
    with single_thread():
        train_module.train(stopped)
        last = os.path.join(str(tmp_path / "runs"), train_module.run_id(stopped), "last.pt")
        state = checkpoints.load(last)
        state["progress"].update(finished=True, bad_epochs=1)     # as an early stop leaves it
        checkpoints.save(last, state)
        capsys.readouterr()
        stopped.train.epochs = 10
        train_module.train(stopped)
    out = capsys.readouterr().out
    assert "stopped early after epoch 1" in out and "--train.epochs 10 trains nothing more" in out
    assert "--train.early_stop_patience 2" in out
    assert checkpoints.load(last)["progress"]["epoch"] == 1


@pytest.fixture
def prepared(tmp_path):
    """A tiny demo corpus whose prepared files the tests below damage."""
    config = config_module.build("Demo", **{"corpus.data_root": str(tmp_path)})
    build_demo(config, split_sizes=(3, 2, 2), show_progress=False)
    return config, corpus_paths(str(tmp_path), "Demo")


def edit_split(paths, split, change):
    path = paths.split_json(split)
    record = json.load(open(path))
    change(record["videos"])
    json.dump(record, open(path, "w"))
    return path


def test_a_scored_video_without_a_reference_stops_at_reading(prepared):
    config, paths = prepared
    path = edit_split(paths, "val", lambda videos: videos[1].update(captions=["", "  "]))
    with pytest.raises(DataError, match="have no non-empty reference caption") as error:
        load_split(config, "val")
    assert path in str(error.value) and "python -m splits.Demo" in str(error.value)


def test_a_caption_that_is_not_a_string_is_one_line(prepared):
    config, paths = prepared
    edit_split(paths, "test", lambda videos: videos[0]["captions"].append(7))
    with pytest.raises(DataError, match="has a caption that is not a string"):
        load_split(config, "test")


def test_a_training_video_without_a_caption_is_named(prepared, capsys):
    config, paths = prepared
    edit_split(paths, "train", lambda videos: videos[0].update(captions=[""]))
    load_split(config, "train")
    assert "have no non-empty caption: they are left out of training" in capsys.readouterr().err


def test_features_stored_as_byte_strings_are_one_line(prepared):
    config, paths = prepared
    source = paths.feature_file("Demo", "Motion")
    with h5py.File(source, "a") as f:
        vid = sorted(f)[0]
        shape = f[vid].shape
        del f[vid]
        f[vid] = np.full(shape, b"x", dtype="S1")
    split = next(s for s in ("train", "val", "test")
                 if vid in [v["id"] for v in json.load(open(paths.split_json(s)))["videos"]])
    with pytest.raises(DataError, match="not numbers"):
        load_split(config, split)


def test_a_huge_n_frames_is_one_line_not_an_allocation(prepared):
    config, _ = prepared
    config.features.n_frames = 1_000_000_000
    with pytest.raises(DataError, match="lower --features.n_frames"):
        load_split(config, "train")


def test_a_checkpoint_from_a_newer_version_is_named(trained, tmp_path, capsys):
    _, run_dir = trained
    payload = checkpoints.load(os.path.join(run_dir, "best.pt"))
    payload["config"]["model"]["future_field"] = 1
    newer = tmp_path / "newer.pt"
    checkpoints.save(str(newer), payload)
    status, err = run_py(capsys, "--checkpoint", newer)
    assert status == 2 and str(newer) in err and "future_field" in err and "another (newer?) version" in err


def test_an_unknown_corpus_is_not_sent_to_a_script_that_does_not_exist(tmp_path):
    config = config_module.build("Demo", **{"corpus.name": "Nope", "corpus.data_root": str(tmp_path)})
    with pytest.raises(DataError) as error:
        load_split(config, "train")
    assert "splits.Nope" not in str(error.value) and "'Nope' is none this project prepares" in str(error.value)


def test_a_misspelt_backbone_with_weights_lists_the_names(tmp_path):
    from extraction.backbones import build_backbone
    with pytest.raises(DataError, match="did you mean ResNet152") as error:
        build_backbone("ResNet15", str(tmp_path / "w.pth"), "cpu")
    assert "EfficientNetLite0" in str(error.value) and "install" not in str(error.value)


def test_a_moved_weights_folder_recorded_with_the_checkpoint_is_named_as_such(tmp_path):
    from captioning.video import load_backbones
    moved = str(tmp_path / "clip-weights")
    with pytest.raises(DataError) as error:
        load_backbones(["CLIP-ViT-B-32"], {}, "cpu", {"CLIP-ViT-B-32": {"weights": moved, "preprocessing": "{}"}})
    assert "recorded with the checkpoint's training features" in str(error.value)
    assert moved in str(error.value) and "--weights CLIP-ViT-B-32=FOLDER" in str(error.value)


def test_the_progress_moves_within_a_video():
    from extraction.backbones import build_backbone
    backbone = build_backbone("EfficientNetLite0", device="cpu")
    parts = []
    backbone.features(np.zeros((5, 256, 256, 3), np.uint8), batch_size=2, done=parts.append)
    assert parts == [0.4, 0.4, 0.2]
