"""Tensors of two devices never meet: the CUDA paths checked on a CPU, with the meta device as
the GPU's stand-in and every op checked against CUDA's rules (tests/devices.py).

Data kept on the CPU on purpose (caption lengths, the batch plans drawn from a CPU generator)
meets the model's device only through explicit copies. Meta tensors hold no values: these tests
check devices and shapes, never numbers. With SALSTM_TEST_DEVICE=cuda on a GPU machine the
same tests run on the GPU itself, still checked op by op.
"""
import numpy as np
import pytest
import torch

import config as config_module
import run as run_module
import train as train_module
from bench.workload import subset_data
from evaluation.predictions import caption_videos
from loader.batches import caption_batch_order, make_caption_batch
from loader.captions import CaptionTargets
from loader.corpus import TrainingData, load_training_data
from models import checkpoints
from models.sa_lstm import build_model
from splits.Demo import build_demo
from tests.devices import SECOND_DEVICE, on_the_stand_in_device
from tests.tiny import NoWriter, small_setup

DEVICE = SECOND_DEVICE


def caption_targets(device, captions=6, width=5) -> CaptionTargets:
    """Targets as CaptionTargets.to(device) leaves them: tokens and owners there, lengths on the CPU."""
    tokens = torch.randint(4, 9, (captions, width))
    lengths = torch.randint(1, width - 1, (captions,))
    return CaptionTargets(tokens, lengths, torch.arange(captions) % 3).to(device)


def test_subset_data_indexes_each_field_with_rows_on_its_own_device():
    # bench/workload.py moved the rows to the tokens' device, then indexed the CPU lengths with
    # them: "indices should be either on cpu or on the same device as the indexed tensor".
    data = TrainingData(None, None, None, None, caption_targets(DEVICE), caption_targets(DEVICE))
    with on_the_stand_in_device() as meetings:
        subset = subset_data(data, "train_targets", torch.tensor([4, 0, 2]))
    assert meetings.meetings == []
    assert subset.train_targets.lengths.device.type == "cpu" and len(subset.train_targets) == 3
    assert subset.train_targets.tokens.device == DEVICE == subset.train_targets.video_index.device
    assert subset.val_targets is data.val_targets


def test_caption_batches_from_cpu_plans_of_data_on_the_device():
    _, config, data = small_setup()
    with on_the_stand_in_device() as meetings:
        plans = caption_batch_order(data.train_targets, 3, torch.Generator().manual_seed(1), True)
        batches = [make_caption_batch(data.train, data.train_targets, rows) for rows in plans]
        # rows already on the device (a caller's subset): the lengths are still read on the CPU
        batches.append(make_caption_batch(data.train, data.train_targets, plans[0].to(DEVICE)))
    assert meetings.meetings == []
    assert all(rows.device.type == "cpu" for rows in plans)
    for batch in batches:
        assert {t.device for t in vars(batch).values()} == {DEVICE}


def test_train_epoch_and_validation_loss_with_model_and_data_on_the_device():
    model, config, data = small_setup(**{"train.attention_penalty": 0.7})
    optimizer = train_module.make_optimizer(model, config.train)
    with on_the_stand_in_device() as meetings:
        train_module.train_epoch(model, optimizer, data, config, 1, NoWriter(), 0)
        train_module.validation_loss(model, data, config)
    assert meetings.meetings == []
    assert all(p.device == DEVICE for p in model.parameters())


@pytest.mark.parametrize("beam_size", [1, 2])
@pytest.mark.parametrize("split", ["val", "test"])       # on the device; on the CPU
def test_decoding_a_split_with_the_model_on_the_device_gives_cpu_predictions(beam_size, split):
    model, config, data = small_setup(**{"eval.beam_size": beam_size})
    videos = getattr(data, split)
    with on_the_stand_in_device() as meetings:
        predictions = caption_videos(model, videos, data.vocab, config.eval, 2)
    assert meetings.meetings == []
    assert len(predictions) == len(videos)
    assert all(isinstance(p["caption"], str) and p["attention"].device.type == "cpu" for p in predictions)


def test_caption_clip_moves_a_cpu_clip_to_the_model_device():
    video = pytest.importorskip("captioning.video", reason="captioning video files needs matplotlib")
    model, config, data = small_setup()
    k = config.features.n_frames
    clip = video.Clip("clip", np.zeros((k, data.feature_size), np.float32), np.ones(k, bool), None)
    with on_the_stand_in_device() as meetings:
        prediction = video.caption_clip(model, data.vocab, config, clip, DEVICE)
    assert meetings.meetings == []
    assert prediction["video_id"] == "clip" and prediction["attention"].device.type == "cpu"


def test_video_split_subset_stays_on_its_device():
    _, _, data = small_setup()
    with on_the_stand_in_device() as meetings:
        subset = data.val.subset([2, 0])
    assert meetings.meetings == []
    assert subset.video_ids == ["val2", "val0"] and subset.features.device == DEVICE


def trained_checkpoint(path, device="cpu"):
    """A last.pt as train.py writes it, after one step of fused Adam on the device."""
    model, config, data = small_setup(device="cpu")
    optimizer = train_module.make_optimizer(model, config.train)
    scheduler = train_module.make_scheduler(optimizer, config.train, higher_better=True)
    train_module.train_epoch(model, optimizer, data, config, 1, NoWriter(), 0)
    progress = {"epoch": 1, "step": 2, "best_score": 1.0, "best_epoch": 1, "bad_epochs": 0,
                "finished": False, "history": []}
    checkpoints.save(path, {**train_module.model_payload(model, config, data),
                            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                            "progress": progress, "rng": train_module.rng_state()})
    return model, optimizer, config, data


def test_a_cpu_checkpoint_resumes_on_another_device(tmp_path):
    path = str(tmp_path / "last.pt")
    cpu_model, cpu_optimizer, config, data = trained_checkpoint(path)
    model = build_model(config, len(data.vocab), data.feature_size).to(DEVICE)
    optimizer = train_module.make_optimizer(model, config.train)
    scheduler = train_module.make_scheduler(optimizer, config.train, higher_better=True)
    expected_rng = checkpoints.load(path)["rng"]["torch"]
    torch.manual_seed(99)
    with on_the_stand_in_device() as meetings:
        progress = train_module.resume(path, model, optimizer, scheduler, data, config)
    assert meetings.meetings == []
    assert progress["epoch"] == 1 and torch.equal(torch.get_rng_state(), expected_rng)
    state = optimizer.state_dict()["state"]
    assert {t.device for s in state.values() for k, t in s.items() if k != "step"} == {DEVICE}
    assert len(state) == len(cpu_optimizer.state_dict()["state"])
    assert all(p.device == DEVICE for p in model.parameters())



@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("data"))
    build_demo(config_module.build("Demo", **{"corpus.data_root": root}), split_sizes=(12, 4, 4),
               show_progress=False)
    return root


def demo_config(root, run_root, epochs=1):
    return config_module.build("Demo", **{
        "corpus.data_root": root, "train.run_root": str(run_root), "train.epochs": epochs,
        "model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
        "loader.batch_size": 30, "eval.beam_size": 2, "eval.max_len": 4, "eval.metrics": [],
        "train.select_metric": "loss"})


def test_training_data_leaves_the_test_split_on_the_cpu(demo_root, tmp_path):
    with on_the_stand_in_device() as meetings:
        data = load_training_data(demo_config(demo_root, tmp_path), DEVICE)
    assert meetings.meetings == []
    assert {data.train.features.device, data.val.frame_mask.device, data.train_targets.tokens.device,
            data.val_targets.tokens.device} == {DEVICE}
    assert data.test.features.device.type == data.test.frame_mask.device.type == "cpu"


def test_train_py_trains_resumes_and_tests_on_the_device(demo_root, tmp_path, monkeypatch):
    # The whole of train.train, from the corpus on disk to the test predictions, with the device
    # pick_device would give on a GPU machine; then resumed for a second epoch.
    config = demo_config(demo_root, tmp_path / "runs")
    monkeypatch.setattr(train_module, "pick_device", lambda name: DEVICE)
    monkeypatch.setattr(train_module, "summary_writer", lambda run_dir: NoWriter())
    with on_the_stand_in_device() as meetings:
        train_module.train(config)
        config.train.epochs = 2
        train_module.train(config)
    assert meetings.meetings == []
    last = checkpoints.load(str(tmp_path / "runs" / train_module.run_id(config) / "last.pt"))
    assert last["progress"]["epoch"] == 2


def test_run_py_captions_with_a_cpu_checkpoint_on_the_device(demo_root, tmp_path, monkeypatch):
    config = demo_config(demo_root, tmp_path / "runs")
    config.train.device = "cpu"
    monkeypatch.setattr(train_module, "summary_writer", lambda run_dir: NoWriter())
    train_module.train(config)
    best = str(tmp_path / "runs" / train_module.run_id(config) / "best.pt")
    monkeypatch.setattr(run_module, "pick_device", lambda name: DEVICE)
    with on_the_stand_in_device() as meetings:
        assert run_module.caption_split(best, "val", str(tmp_path / "out")) == {}
    assert meetings.meetings == []
    assert (tmp_path / "out" / "val_predictions.json").exists()


def test_an_outer_bf16_autocast_stays_on_in_training_and_decoding():
    # python -m bench --autocast bf16 runs train_epoch and decode inside torch.autocast; their own
    # switches (train/eval.autocast_bf16, off) opened torch.autocast(enabled=False), which turned
    # the benchmark's bf16 off again: its bf16 rows of training and beam search were float32.
    model, config, data = small_setup(device="cpu")
    dtypes = []
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda m, i, output: dtypes.append(output.dtype))
    optimizer = train_module.make_optimizer(model, config.train)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        train_module.train_epoch(model, optimizer, data, config, 1, NoWriter(), 0)
        trained, dtypes[:] = set(dtypes), []
        caption_videos(model, data.test, data.vocab, config.eval, 2)
    assert trained == {torch.bfloat16} and set(dtypes) == {torch.bfloat16}


@pytest.mark.parametrize("beam_size", [1, 2])
def test_predictions_hold_float32_cpu_attention_under_bf16_decoding(beam_size):
    model, config, data = small_setup(device="cpu", **{"eval.beam_size": beam_size,
                                                        "eval.autocast_bf16": True})
    predictions = caption_videos(model, data.test, data.vocab, config.eval, 2)
    assert all(p["attention"].dtype == torch.float32 for p in predictions)
    assert all(p["attention"].numpy().ndim == 2 for p in predictions)      # pictures need numpy
