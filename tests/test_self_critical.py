"""Self-critical training as a phase of train.py, on a small demo corpus: it starts from the best
cross-entropy checkpoint, logs its reward, keeps the best checkpoint by validation CIDEr, and
resumes inside the phase after an interruption."""
import pytest

import config as config_module
import train as train_module
from evaluation import coco
from models import checkpoints
from tests import small_demo
from tests.small_demo import SMALL
from tests.small_demo import last_checkpoints_alike

SCST = {"train.epochs": 1, "train.scst_epochs": 1, "train.scst_samples": 3, "loader.batch_size": 20,
        "eval.max_len": 8}




def small_config(data_root, run_root, **overrides):
    return small_demo.small_config(SMALL, data_root, run_root, **overrides)


@pytest.mark.parametrize("baseline", ["mean_of_samples", "greedy"])
def test_scst_phase_follows_cross_entropy_from_its_best_checkpoint(data_root, tmp_path, baseline):
    config = small_config(data_root, tmp_path, **SCST, **{"train.scst_baseline": baseline})
    train_module.train(config)
    run_dir = tmp_path / train_module.run_id(config)
    last = checkpoints.load(str(run_dir / "last.pt"))
    progress = last["progress"]
    assert progress["phase"] == "scst" and progress["scst_epoch"] == 1 and progress["epoch"] == 2
    scst_epoch = progress["history"][-1]
    assert scst_epoch["epoch"] == 2 and 0.0 <= scst_epoch["scst/reward"]
    assert "scst/baseline" in scst_epoch and "CIDEr" in scst_epoch
    xe = checkpoints.load(str(run_dir / "best_xe.pt"))
    assert xe["epoch"] == 1
    # the SCST optimizer runs at train.lr / 10
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(config.train.lr / 10)


def test_scst_runs_without_java_chosen_by_the_in_process_cider_d(data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(coco.shutil, "which", lambda name: None)        # no Java here
    config = small_config(data_root, tmp_path, **SCST, **{"eval.metrics": [],
                                                          "train.select_metric": "CIDEr-D"})
    test_scores = train_module.train(config)
    run_dir = tmp_path / train_module.run_id(config)
    progress = checkpoints.load(str(run_dir / "last.pt"))["progress"]
    assert progress["phase"] == "scst" and progress["scst_epoch"] == 1
    val_cider_d = [epoch["CIDEr-D"] for epoch in progress["history"]]      # 1 XE epoch, 1 SCST
    assert len(val_cider_d) == 2 and "scst/reward" in progress["history"][1]
    assert progress["best_score"] == max(val_cider_d)
    assert checkpoints.load(str(run_dir / "best.pt"))["epoch"] == 1 + val_cider_d.index(max(val_cider_d))
    assert "CIDEr-D" in test_scores and "CIDEr" not in test_scores


def test_scst_resumes_inside_the_phase_as_an_uninterrupted_run(data_root, tmp_path):
    straight = small_config(data_root, tmp_path / "a", **{**SCST, "train.scst_epochs": 2})
    train_module.train(straight)
    interrupted = small_config(data_root, tmp_path / "b", **SCST)   # stops after 1 SCST epoch ...
    train_module.train(interrupted)
    interrupted.train.scst_epochs = 2
    train_module.train(interrupted)                                   # ... and goes on
    a, b = last_checkpoints_alike(tmp_path / "a", tmp_path / "b", train_module.run_id(straight))
    assert a["progress"]["scst_epoch"] == b["progress"]["scst_epoch"] == 2


def test_scst_settings_are_checked(data_root, tmp_path):
    with pytest.raises(config_module.ConfigError, match="scst_baseline"):
        train_module.train(small_config(data_root, tmp_path, **{**SCST, "train.scst_baseline": "best"}))
    with pytest.raises(config_module.ConfigError, match="(?s)select_metric.*CIDEr-D.*no Java"):
        train_module.train(small_config(data_root, tmp_path, **{**SCST, "train.select_metric": "loss"}))
    with pytest.raises(config_module.ConfigError, match="scst_samples"):
        train_module.train(small_config(data_root, tmp_path, **{**SCST, "train.scst_samples": 1}))


def test_bench_scst_continues_one_cross_entropy_run_per_seed_with_each_baseline(data_root, tmp_path):
    from bench import scst as bench_scst
    base = small_config(data_root, tmp_path, **SCST)
    rows = bench_scst.run_seed(base, 7, scst_epochs=1)
    assert [row["variant"] for row in rows] == list(bench_scst.VARIANTS)
    assert all(row["seed"] == 7 and row["seconds"] > 0 and "CIDEr" in row for row in rows)
    for baseline in ("mean_of_samples", "greedy"):
        last = checkpoints.load(str(tmp_path / f"seed7_{baseline}" / "last.pt"))
        assert last["progress"]["phase"] == "scst"
        assert last["config"]["train"]["scst_baseline"] == baseline
        # the SCST runs continued the cross-entropy run: its epoch 1 is theirs
        xe = checkpoints.load(str(tmp_path / "seed7_xe" / "last.pt"))
        assert last["progress"]["history"][0] == xe["progress"]["history"][0]
    assert "| + SCST, greedy | 7 |" in bench_scst.table(rows, bench_scst.COLUMNS)
