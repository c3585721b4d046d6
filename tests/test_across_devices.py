"""Runs and checkpoints crossing between the CPU and the test device, end to end on a small demo.

With SALSTM_TEST_DEVICE=cuda the device is the GPU: a run started there resumes on the CPU, its
checkpoint captions a split on the CPU, on the GPU and as CUDA graphs with the same captions, and
a CPU run resumes on the GPU with its training steps as CUDA graphs. Without it the device is
the one train.py would pick (the CPU in CI), and the same logic runs.
"""
import json

import pytest

import run as run_module
import train as train_module
from models import checkpoints
from tests import small_demo
from tests.small_demo import SMALL
from tests.devices import TRAIN_DEVICE
from utils import pick_device

DEVICE = str(pick_device(TRAIN_DEVICE))
on_cuda = pytest.mark.skipif(not DEVICE.startswith("cuda"), reason="CUDA graphs need a CUDA GPU")


DEMO_SPLITS = (40, 16, 8)


def config_on(device, data_root, run_root, **overrides):
    return small_demo.small_config(SMALL, data_root, run_root, **{
        "train.device": device, "train.run_name": "crossing", "train.epochs": 1, **overrides})


def val_captions(checkpoint, out, *options) -> list:
    """The val split's captions that run.py writes for the checkpoint, with these options."""
    assert run_module.main(["--checkpoint", str(checkpoint), "--split", "val", "--out", str(out),
                            "--eval.metrics", "", *options]) == 0
    return [p["caption"] for p in json.loads((out / "val_predictions.json").read_text())]


def test_a_run_started_on_the_device_resumes_on_the_cpu(data_root, tmp_path, capsys):
    train_module.train(config_on(DEVICE, data_root, tmp_path))
    train_module.train(config_on("cpu", data_root, tmp_path, **{"train.epochs": 2}))
    assert "after epoch 1" in capsys.readouterr().out
    last = checkpoints.load(str(tmp_path / "crossing" / "last.pt"))
    assert last["progress"]["epoch"] == 2
    assert all(tensor.device.type == "cpu" for tensor in last["model"].values())


def test_a_device_checkpoint_captions_alike_on_the_cpu_the_device_and_as_cuda_graphs(data_root, tmp_path):
    train_module.train(config_on(DEVICE, data_root, tmp_path))
    best = tmp_path / "crossing" / "best.pt"
    on_cpu = val_captions(best, tmp_path / "cpu", "--train.device", "cpu")
    # batches of 5 of the 16 clips: two batch shapes, and replays of the first one's graph
    batches = ("--train.device", DEVICE, "--loader.eval_batch_size", "5")
    eager = val_captions(best, tmp_path / "eager", *batches)
    graphed = val_captions(best, tmp_path / "graphed", *batches, "--eval.cuda_graphs", "true")
    assert len(on_cpu) == len(eager) == 16
    assert graphed == eager                                  # the same kernels, the same search
    # float rounding differs between devices and may swap near-tied beams, rarely
    assert sum(a == b for a, b in zip(on_cpu, eager)) >= 14


@on_cuda
def test_a_cpu_run_resumes_on_the_gpu_with_its_steps_as_cuda_graphs(data_root, tmp_path, capsys):
    train_module.train(config_on("cpu", data_root, tmp_path))
    train_module.train(config_on(DEVICE, data_root, tmp_path, **{"train.epochs": 2,
                                                                 "train.cuda_graphs": True}))
    said = capsys.readouterr()
    assert "after epoch 1" in said.out and "could not be captured" not in said.err
    history = checkpoints.load(str(tmp_path / "crossing" / "last.pt"))["progress"]["history"]
    assert len(history) == 2 and history[1]["train_loss"] < history[0]["train_loss"]
