"""Bad input and a failing machine end in one clear error that names the file and the fix, never
in a NaN model, a traceback, or a run that reports what it did not do."""
import os
import tempfile

import h5py
import numpy as np
import pytest
import torch

import train as train_module
import utils
from loader.dataset import load_split
from models import checkpoints
from models.sa_lstm import build_model
from splits.layout import corpus_paths, write_prepared
from tests import small_demo
from tests.small_demo import build_small_demo, run_py
from training.run_folder import run_id
from utils import DataError, WriteError

SMALL = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
         "loader.batch_size": 20, "loader.eval_batch_size": 16, "eval.beam_size": 2,
         "eval.max_len": 8, "train.lr": 3e-3, "train.device": "cpu", "train.epochs": 1,
         "eval.metrics": [], "train.select_metric": "loss"}
REBUILD_DEMO = "python -m splits.Demo --corpus.data_root"


@pytest.fixture
def data_root(tmp_path_factory):
    """A fresh small demo for each test: the tests below damage it."""
    return build_small_demo(tmp_path_factory, (40, 8, 8))


def small_config(data_root, run_root, **overrides):
    return small_demo.small_config(SMALL, data_root, run_root, **overrides)


def demo_file(data_root, *parts) -> str:
    return os.path.join(data_root, "Demo", *parts)


# ---- non-finite features -------------------------------------------------------------------
def test_preparing_a_split_refuses_nan_or_inf_features_naming_the_videos(tmp_path):
    paths = corpus_paths(str(tmp_path), "Mine")
    os.makedirs(paths.features)
    with h5py.File(paths.feature_file("Mine", "Cnn"), "w") as features:
        features["a"] = np.ones((4, 3), np.float32)
        features["b"] = np.array([[1, np.nan, 0]] * 4, np.float32)
        features["c"] = np.array([[np.inf, 0, 0]] * 4, np.float32)
    videos = [{"id": vid, "captions": ["x"]} for vid in "abc"]
    with pytest.raises(DataError, match=r"NaN or infinite features in .*Mine_Cnn.hdf5 for 2 videos "
                                        r"\(b, c\) of the train split"):
        write_prepared(paths, "Mine", "train", videos, ["Cnn"])
    assert not os.path.exists(paths.split_json("train"))


def test_the_loader_refuses_a_feature_file_changed_after_preparing(data_root, tmp_path):
    config = small_config(data_root, tmp_path)
    with h5py.File(demo_file(data_root, "features", "Demo_Appearance.hdf5"), "a") as features:
        features["demo0003"][...] = np.nan
    with pytest.raises(DataError, match=rf"NaN or infinite features .* for 1 video \(demo0003\).*{REBUILD_DEMO} .* --force"):
        load_split(config, "train")
    with h5py.File(demo_file(data_root, "features", "Demo_Appearance.hdf5"), "a") as features:
        shape = features["demo0005"].shape
        del features["demo0005"]
        features["demo0005"] = np.zeros((shape[0], shape[1] + 1), np.float32)
    with pytest.raises(DataError, match=rf"video demo0005 has features of shape \({shape[0]}, "
                                        rf"{shape[1] + 1}\) .* but \({shape[0]}, {shape[1]}\) when the "
                                        "split was prepared"):
        load_split(config, "train")


def test_training_stops_at_a_non_finite_loss_naming_the_videos_and_keeps_the_checkpoints(
        data_root, tmp_path, monkeypatch):
    config = small_config(data_root, tmp_path)
    train_module.train(config)
    run_dir = tmp_path / run_id(config)
    before = {name: (run_dir / name).read_bytes() for name in ("best.pt", "last.pt")}
    load = train_module.load_training_data

    def poisoned(config, device):
        data = load(config, device)
        data.train.features[7, 0, 0] = float("nan")       # changed in memory: the loader checked it
        return data
    monkeypatch.setattr(train_module, "load_training_data", poisoned)
    config.train.epochs = 2
    with pytest.raises(DataError, match=r"training loss is nan in epoch 2, first in batch \d+ of \d+, "
                                        r"where the features of 1 video \(demo0007\) are NaN or infinite"):
        train_module.train(config)
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    best = checkpoints.load(str(run_dir / "best.pt"))
    assert all(torch.isfinite(tensor).all() for tensor in best["model"].values())


# ---- a full disk -----------------------------------------------------------------------------
needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")


def full_disk_for(monkeypatch, name: str) -> None:
    """Writes to files called `name` go to /dev/full, which answers every write with ENOSPC."""
    mkstemp = tempfile.mkstemp

    def full(*args, **kwargs):
        fd, path = mkstemp(*args, **kwargs)
        if path.endswith(name):
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return fd, path
    monkeypatch.setattr(utils.tempfile, "mkstemp", full)


@needs_dev_full
def test_a_full_disk_names_the_path_the_error_and_what_is_kept(tmp_path, monkeypatch):
    path = str(tmp_path / "last.pt")
    utils.atomic_torch_save({"epoch": 1}, path)
    full_disk_for(monkeypatch, "last.pt")
    with pytest.raises(WriteError, match=r"cannot write .*last.pt: No space left on device \(ENOSPC\); "
                                         "its previous contents are kept"):
        utils.atomic_torch_save({"epoch": 2, "w": torch.zeros(100_000)}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.pt"]                 # no temporary file left


@needs_dev_full
def test_train_py_on_a_full_disk_ends_with_one_line(data_root, tmp_path, monkeypatch, capsys):
    full_disk_for(monkeypatch, "best.pt")
    status = train_module.main(small_demo.cli_args(small_config(data_root, tmp_path)))
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        line for line in err.splitlines() if "ENOSPC" in line]
    assert "best.pt: No space left on device (ENOSPC); nothing was written there" in err


# ---- prepared files and checkpoints -----------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"\xff\xfe not utf-8", b'{"videos": 3}', b"[1, 2"])
def test_a_damaged_prepared_split_names_the_file_and_the_command_that_rebuilds_it(
        data_root, tmp_path, content):
    with open(demo_file(data_root, "prepared", "train.json"), "wb") as handle:
        handle.write(content)
    with pytest.raises(DataError, match=rf"train.json (is damaged|is not a prepared split).* "
                                        rf"{REBUILD_DEMO} .*--force$"):
        load_split(small_config(data_root, tmp_path), "train")


def untrained_checkpoint(data_root, tmp_path, **changes) -> str:
    config = small_config(data_root, tmp_path)
    vocab = ["<pad>", "<bos>", "<eos>", "<unk>", "shape"]
    feature_size = load_split(config, "test").features.shape[-1]
    payload = {"model": build_model(config, len(vocab), feature_size).state_dict(),
               "config": config.to_dict(), "vocab": vocab, "feature_size": feature_size, "epoch": 0}
    path = str(tmp_path / "best.pt")
    checkpoints.save(path, {**payload, **changes})
    return path


def test_run_py_checks_the_demos_clips_before_decoding(data_root, tmp_path, capsys):
    checkpoint = untrained_checkpoint(data_root, tmp_path)
    open(demo_file(data_root, "annotations", "clips.json"), "w").close()
    status, err = run_py(capsys, "--checkpoint", checkpoint, "--pictures", 2)
    assert status == 2 and "clips.json is damaged" in err and f"{REBUILD_DEMO}" in err
    assert not os.path.exists(tmp_path / "test_predictions.json")   # nothing decoded for nothing


def test_a_checkpoint_without_its_config_is_named(data_root, tmp_path, capsys):
    checkpoint = untrained_checkpoint(data_root, tmp_path)
    payload = checkpoints.load(checkpoint)
    del payload["config"]
    checkpoints.save(checkpoint, payload)
    status, err = run_py(capsys, "--checkpoint", checkpoint)
    assert status == 2 and "lacks config" in err and "Traceback" not in err


def test_a_damaged_last_pt_says_best_pt_is_intact(data_root, tmp_path):
    config = small_config(data_root, tmp_path)
    train_module.train(config)
    last = tmp_path / run_id(config) / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    config.train.epochs = 2
    with pytest.raises(DataError, match=r"last.pt cannot be read .*best.pt \(epoch 1\) is intact: caption "
                                        r"with it by python run.py --checkpoint .*best.pt; --new_run"):
        train_module.train(config)


def test_the_demo_rebuild_hint_rebuilds_a_damaged_feature_file(data_root, tmp_path):
    from splits.Demo import main
    config = small_config(data_root, tmp_path)
    feature_file = demo_file(data_root, "features", "Demo_Motion.hdf5")
    with open(feature_file, "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(DataError) as error:
        load_split(config, "train")
    hint = str(error.value).split("`")[1] if "`" in str(error.value) else str(error.value).split(": ")[-1]
    assert hint.startswith("python -m splits.Demo") and "--force" in hint
    main(hint.split()[3:] + ["--split_sizes", "40,8,8"])      # what the hint says, run
    assert load_split(config, "train").features.isfinite().all()
