"""End to end on a small demo corpus: train, resume after SIGKILL, and reproduce with run.py."""
import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from models import checkpoints
import train as train_module
from tests import small_demo
from tests.small_demo import SCORING, SMALL, cli_args, last_checkpoints_alike
from tests.tiny import tiny_clips, tiny_model
from utils import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


DEMO_SPLITS = (60, 10, 20)


def small_config(data_root, run_root, **overrides):
    return small_demo.small_config(SMALL, data_root, run_root, **overrides)


def test_resumed_training_equals_uninterrupted_training(data_root, tmp_path):
    straight = small_config(data_root, tmp_path / "a", **{"train.epochs": 2})
    train_module.train(straight)
    interrupted = small_config(data_root, tmp_path / "b", **{"train.epochs": 1})
    train_module.train(interrupted)                       # stops after epoch 1 ...
    interrupted.train.epochs = 2
    train_module.train(interrupted)                       # ... and goes on from its last.pt
    a, b = last_checkpoints_alike(tmp_path / "a", tmp_path / "b", train_module.run_id(straight))
    assert a["progress"]["epoch"] == b["progress"]["epoch"] == 2
    assert a["progress"]["best_score"] == pytest.approx(b["progress"]["best_score"])
    # each epoch records where its time went, resumed or not
    for epoch in a["progress"]["history"] + b["progress"]["history"]:
        assert set(epoch["seconds"]) == {"train", "val_loss", "decode", "score"}
        timed = ("train", "val_loss", "decode", "score") if SCORING else ("train", "val_loss", "decode")
        assert all(epoch["seconds"][name] > 0 for name in timed)


def test_sigkill_in_second_epoch_then_restart_finishes_and_run_py_reproduces(data_root, tmp_path):
    config = small_config(data_root, tmp_path / "runs", **{"train.epochs": 3})
    command = [sys.executable, os.path.join(ROOT, "train.py")] + cli_args(config)
    run_dir = tmp_path / "runs" / train_module.run_id(config)
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not (run_dir / "last.pt").exists():            # written at the end of epoch 1
        assert process.poll() is None, process.stdout.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)                  # epoch 2 has begun
    assert process.wait() == -signal.SIGKILL
    state = checkpoints.load(str(run_dir / "last.pt"))
    assert state["progress"]["epoch"] == 1

    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resuming" in finished.stdout and "after epoch 1" in finished.stdout
    best = checkpoints.load(str(run_dir / "best.pt"))
    model, best_config, vocab = checkpoints.model_from_checkpoint(best)
    assert best_config.model.hidden_size == 32 and len(vocab) > 4
    assert checkpoints.load(str(run_dir / "last.pt"))["progress"]["epoch"] == 3
    out = tmp_path / "run_py"
    reproduced = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), "--checkpoint",
                                 str(run_dir / "best.pt"), "--out", str(out)]
                                + ([] if SCORING else ["--eval.metrics", ""]),
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert reproduced.returncode == 0, reproduced.stderr[-2000:]
    if SCORING:
        trained_scores = json.loads((run_dir / "test_scores.json").read_text())
        scores = json.loads((out / "test_scores.json").read_text())
        for metric in ("Bleu_4", "ROUGE_L", "CIDEr"):
            assert scores[metric] == pytest.approx(trained_scores[metric], abs=1e-9)
    else:
        assert not (run_dir / "test_scores.json").exists() and not (out / "test_scores.json").exists()
    predictions = json.loads((out / "test_predictions.json").read_text())
    trained = json.loads((run_dir / "test_predictions.json").read_text())
    assert [p["caption"] for p in predictions] == [p["caption"] for p in trained]
    assert len(predictions) == 20 and all(p["references"] for p in predictions)
    assert (out / "test_predictions.csv").read_text().startswith("video_id,caption,references")


def test_ctrl_c_after_an_epoch_says_how_to_go_on_and_keeps_last_pt(data_root, tmp_path):
    config = small_config(data_root, tmp_path / "runs", **{"train.epochs": 50})
    run_dir = tmp_path / "runs" / train_module.run_id(config)
    # SIGINT as Ctrl-C sends it, also where the test runner was started with SIGINT ignored
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py")] + cli_args(config),
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300
        while not (run_dir / "last.pt").exists():
            assert process.poll() is None, process.stderr.read()
            assert time.time() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:                               # never leave a 50-epoch run behind a failed check
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err[-2000:]
    assert "interrupted: run the same command again" in err and "Traceback" not in err
    assert checkpoints.load(str(run_dir / "last.pt"))["progress"]["epoch"] >= 1


def test_run_py_errors_are_clear(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), "--checkpoint",
                             str(tmp_path / "missing.pt")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "does not exist" in result.stderr
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), "--checkpoint",
                             str(tmp_path / "junk.pt")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "cannot be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_resuming_with_another_vocabulary_is_a_clear_error(data_root, tmp_path):
    config = small_config(data_root, tmp_path, **{"train.epochs": 1})
    train_module.train(config)
    last = str(tmp_path / train_module.run_id(config) / "last.pt")
    state = checkpoints.load(last)
    checkpoints.save(last, {**state, "vocab": state["vocab"][:-1]})   # the corpus changed since
    config.train.epochs = 2
    with pytest.raises(DataError, match="another vocabulary"):
        train_module.train(config)


def test_a_damaged_last_pt_names_the_file_and_the_way_out(data_root, tmp_path):
    config = small_config(data_root, tmp_path, **{"train.epochs": 1})
    run_dir = tmp_path / train_module.run_id(config)
    run_dir.mkdir()
    (run_dir / "last.pt").write_bytes(b"half a checkpoint")
    with pytest.raises(DataError, match=r"last.pt cannot be read .* --new_run starts a new run folder"):
        train_module.train(config)


def test_bf16_autocast_switch_trains_and_keeps_its_own_run_folder(data_root, tmp_path):
    config = small_config(data_root, tmp_path, **{"train.epochs": 1, "train.autocast_bf16": True})
    scores = train_module.train(config)
    assert "_bf16_" in train_module.run_id(config)
    assert scores["CIDEr"] >= 0.0 if SCORING else scores == {}
    state = checkpoints.load(str(tmp_path / train_module.run_id(config) / "last.pt"))
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_adam_uses_the_fused_kernel_where_torch_has_it_and_the_same_update():
    model, config = tiny_model()
    reference = copy.deepcopy(model)
    optimizer = train_module.make_optimizer(model, config.train)
    if tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 4):   # fused on CPU
        assert optimizer.defaults["fused"]
    plain = torch.optim.Adam(reference.parameters(), lr=config.train.lr, amsgrad=True,
                             weight_decay=config.train.weight_decay)
    features, mask = tiny_clips()
    inputs = torch.tensor([[1, 4, 5, 6], [1, 6, 4, 0], [1, 5, 5, 5]])
    for net, opt in ((model, optimizer), (reference, plain)):
        for _ in range(3):
            opt.zero_grad()
            net(features, mask, inputs)[0].logsumexp(-1).mean().backward()
            opt.step()
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
