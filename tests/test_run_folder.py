"""A run folder belongs to one config and one process: no run silently resumes or overwrites
another's."""
import os
import subprocess
import sys
import time

import pytest

import train as train_module
from models import checkpoints
from tests import small_demo
from training import run_folder
from training.run_folder import FolderLock, run_id
from utils import DataError

SMALL = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
         "loader.batch_size": 20, "loader.eval_batch_size": 16, "eval.beam_size": 2,
         "eval.max_len": 8, "train.lr": 3e-3, "train.device": "cpu", "train.epochs": 1,
         "eval.metrics": [], "train.select_metric": "loss"}




def small_config(data_root, run_root, **overrides):
    return small_demo.small_config(SMALL, data_root, run_root, **overrides)


def folders(root) -> list:
    return sorted(name for name in os.listdir(root) if not name.startswith("."))


@pytest.mark.parametrize("field, value", [("model.dropout", 0.2), ("model.embedding_size", 12),
                                          ("features.n_frames", 6), ("train.weight_decay", 0.0),
                                          ("train.attention_penalty", 0.5)])
def test_a_field_that_changes_learning_gets_its_own_folder(data_root, tmp_path, field, value):
    first = small_config(data_root, tmp_path)
    train_module.train(first)
    before = checkpoints.load(str(tmp_path / run_id(first) / "best.pt"))
    second = small_config(data_root, tmp_path, **{field: value})
    assert run_id(second) != run_id(first)
    train_module.train(second)                       # trained anew, not the first run's scores
    assert len(folders(tmp_path)) == 2
    trained = checkpoints.load(str(tmp_path / run_id(second) / "best.pt"))
    section, name = field.split(".")
    assert trained["config"][section][name] == value
    after = checkpoints.load(str(tmp_path / run_id(first) / "best.pt"))
    assert all((after["model"][k] == before["model"][k]).all() for k in before["model"])


def test_fields_that_may_change_on_resume_keep_the_folder(data_root):
    config = small_config(data_root, "runs")
    name = run_id(config)
    for field, value in [("train.epochs", 9), ("train.scst_epochs", 3), ("train.device", "cuda"),
                         ("train.log_every", 1), ("eval.metrics", ["CIDEr"]), ("train.scst_lr", 1e-5)]:
        other = small_config(data_root, "runs", **{field: value})
        assert run_id(other) == name, field
    assert run_id(small_config(data_root, "runs", **{"corpus.data_root": "elsewhere"})) != name


def test_a_named_run_with_another_config_is_a_clear_error_naming_the_fields(data_root, tmp_path):
    train_module.train(small_config(data_root, tmp_path, **{"train.run_name": "mine"}))
    changed = small_config(data_root, tmp_path, **{"train.run_name": "mine", "train.epochs": 2,
                                                   "model.dropout": 0.2, "train.lr": 1e-3})
    with pytest.raises(DataError, match=r"model.dropout: 0.5 -> 0.2; train.lr: 0.003 -> 0.001.*--new_run"):
        train_module.train(changed)


def test_extending_a_finished_run_resumes_it(data_root, tmp_path, capsys):
    config = small_config(data_root, tmp_path)
    train_module.train(config)
    config.train.epochs = 2
    config.train.log_every = 3                       # may change: a note, not an error
    train_module.train(config)
    out = capsys.readouterr().out
    assert "resuming" in out and "train.log_every: 10 -> 3" in out
    last = checkpoints.load(str(tmp_path / run_id(config) / "last.pt"))
    assert last["progress"]["epoch"] == 2 and folders(tmp_path) == [run_id(config)]


def test_self_critical_settings_are_fixed_once_its_phase_started(data_root, tmp_path):
    config = small_config(data_root, tmp_path, **{"train.scst_epochs": 1, "train.select_metric": "CIDEr-D"})
    train_module.train(config)
    config.train.scst_epochs, config.train.scst_lr = 2, 1e-5
    with pytest.raises(DataError, match=r"train.scst_lr: None -> 1e-05"):
        train_module.train(config)


def test_a_folder_in_use_stops_a_second_process_naming_the_holder(data_root, tmp_path):
    config = small_config(data_root, tmp_path)
    holder = FolderLock(str(tmp_path / run_id(config)))
    started = time.perf_counter()
    with pytest.raises(DataError, match=rf"in use by process {os.getpid()} on .*--new_run"):
        train_module.train(config)
    assert time.perf_counter() - started < 5          # at once: before any data is loaded
    holder.release()
    train_module.train(config)                       # free again


def test_a_dead_process_holds_no_folder(tmp_path):
    run_dir = str(tmp_path / "run")
    code = (f"import sys; sys.path.insert(0, {os.getcwd()!r}); from training.run_folder import FolderLock; "
            f"lock = FolderLock({run_dir!r}); print('held', flush=True); import time; time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(DataError, match=f"process {child.pid}"):
            FolderLock(run_dir)
    finally:
        child.kill()
        child.wait()
    FolderLock(run_dir).release()                    # the kernel dropped the dead holder's lock


def test_a_run_that_stops_before_its_first_file_leaves_no_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        train_module.train(small_config(str(tmp_path / "no data"), tmp_path / "runs",
                                        **{"corpus.name": "MSVD", "features.backbones": ["X"]}))
    assert folders(tmp_path / "runs") == []
