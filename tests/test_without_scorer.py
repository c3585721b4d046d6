"""Machines without Java, pycocoevalcap or tensorboardX (a GPU server): train.py and run.py go on
without COCO scores when asked to (--eval.metrics ""), say so once, and never report a zero;
without the option they stop at start-up with the option in the message."""
import json
import shutil
import sys

import pytest

import config as config_module
import run as run_module
import train as train_module
from evaluation import coco
from evaluation.predictions import numeric
from models import checkpoints
from tests import small_demo
from tests.devices import TRAIN_DEVICE
from utils import DataError

NO_SCORES = {"eval.metrics": [], "train.select_metric": "loss"}
SMALL = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
         "loader.batch_size": 20, "loader.eval_batch_size": 16, "eval.beam_size": 2,
         "eval.max_len": 8, "train.epochs": 1,
         "train.device": TRAIN_DEVICE}


DEMO_SPLITS = (30, 6, 6)


def small_config(data_root, run_root, **overrides):
    return small_demo.small_config(SMALL, data_root, run_root, **overrides)




@pytest.fixture
def no_java(monkeypatch):
    monkeypatch.setattr(coco.shutil, "which", lambda name: None)


def test_without_metrics_training_selects_by_loss_and_writes_no_scores(data_root, tmp_path, capsys,
                                                                        monkeypatch, no_java, one_thread):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)       # import fails as if absent
    config = small_config(data_root, tmp_path, **NO_SCORES)
    assert train_module.train(config) == {}
    out, err = capsys.readouterr()
    assert err.count("note: eval.metrics is empty") == 1
    assert "tensorboardX is not installed or cannot be imported" in err
    assert "val not scored" in out and "test: not scored" in out
    run_dir = tmp_path / train_module.run_id(config)
    assert (run_dir / "test_predictions.json").exists() and not (run_dir / "test_scores.json").exists()
    assert not list(run_dir.glob("events.out.tfevents*"))

    status = run_module.main(["--checkpoint", str(run_dir / "best.pt"), "--out", str(tmp_path / "run"),
                              "--eval.metrics", ""])
    out, err = capsys.readouterr()
    assert status == 0 and "not scored" in out and "note: eval.metrics is empty" in err
    assert (tmp_path / "run" / "test_predictions.csv").exists()
    assert not (tmp_path / "run" / "test_scores.json").exists()


def test_missing_java_stops_training_before_any_work_naming_the_option(tmp_path, no_java):
    config = small_config(str(tmp_path / "no corpus here"), tmp_path)
    with pytest.raises(DataError, match='(?s)java.*not found.*--eval.metrics ""') as error:
        train_module.train(config)
    assert "--train.select_metric loss" in str(error.value)
    assert not (tmp_path / "no corpus here").exists()       # the demo was not even built


def test_missing_pycocoevalcap_names_the_option_for_run_py(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "pycocoevalcap.bleu.bleu", None)
    from evaluation.scorer import open_scorer
    if shutil.which("java") is None:
        pytest.skip("without Java the Java error comes first (the test above)")
    with pytest.raises(DataError, match='(?s)pycocoevalcap.*--eval.metrics ""'):
        open_scorer(config_module.build("Demo").eval, "only the captions are written")


def test_select_metric_needs_a_metric_that_is_computed():
    config = config_module.build("Demo", **{"eval.metrics": []})
    with pytest.raises(config_module.ConfigError, match="--train.select_metric loss"):
        train_module.check_select_metric(config)


class RecordingWriter:
    """TensorBoard's add_scalar, kept in a list."""

    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def close(self):
        pass


def test_without_java_the_in_process_cider_d_chooses_the_best_checkpoint(data_root, tmp_path, capsys,
                                                                          monkeypatch, no_java, one_thread):
    writer = RecordingWriter()
    monkeypatch.setattr(train_module, "summary_writer", lambda run_dir: writer)
    config = small_config(data_root, tmp_path, **{"eval.metrics": [], "train.select_metric": "CIDEr-D",
                                                  "train.epochs": 2, "train.lr": 1e-2})
    test_scores = train_module.train(config)
    out, err = capsys.readouterr()
    assert "--train.select_metric CIDEr-D" in err and out.count("val CIDEr-D ") == 2
    run_dir = tmp_path / train_module.run_id(config)
    progress = checkpoints.load(str(run_dir / "last.pt"))["progress"]
    val_cider_d = [epoch["CIDEr-D"] for epoch in progress["history"]]
    assert len(val_cider_d) == 2 and max(val_cider_d) > 0
    assert progress["best_score"] == max(val_cider_d)
    assert progress["best_epoch"] == 1 + val_cider_d.index(max(val_cider_d))
    best = checkpoints.load(str(run_dir / "best.pt"))
    assert best["epoch"] == progress["best_epoch"] and best["val_scores"] == {"CIDEr-D": max(val_cider_d)}
    assert [(step, value) for tag, value, step in writer.scalars if tag == "val/CIDEr-D"] == \
        list(enumerate(val_cider_d, 1))
    # the test split's in-process CIDEr-D is the run's test score: printed and written
    assert set(numeric(test_scores)) == {"CIDEr-D"} and f"test: CIDEr-D {test_scores['CIDEr-D']:.1f}" in out
    assert json.loads((run_dir / "test_scores.json").read_text())["CIDEr-D"] == test_scores["CIDEr-D"]
    # run.py, from the checkpoint alone, scores the test split the same way
    status = run_module.main(["--checkpoint", str(run_dir / "best.pt"), "--out", str(tmp_path / "run")])
    assert status == 0
    again = json.loads((tmp_path / "run" / "test_scores.json").read_text())
    assert again["CIDEr-D"] == pytest.approx(test_scores["CIDEr-D"], rel=1e-9)
