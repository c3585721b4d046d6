"""Several ranks on the CPU with gloo: 2 processes (torch.multiprocessing or torchrun), tiny runs.

The ranks talk over 127.0.0.1 on a free port only.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.distributed as dist

import distributed
import train as train_module
from distributed import batch_share, shard
from models import checkpoints
from models.loss import training_loss
from tests import small_demo
from tests.small_demo import cli_args
from tests.tiny import tiny_clips, tiny_model
from utils import DataError

if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("this torch build has no torch.distributed with gloo", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
CLIPS = sorted((Path(__file__).parent / "fixtures" / "videos").glob("*.avi"))
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
WORLD = 2
# Dropout off: then the two processes draw nothing at random and must match one process.
SMALL = {"model.hidden_size": 32, "model.embedding_size": 16, "model.attention_size": 16,
         "model.dropout": 0.0, "train.attention_penalty": 0.7, "loader.batch_size": 23,
         "loader.eval_batch_size": 16, "eval.beam_size": 2, "eval.max_len": 12,
         "eval.metrics": ["Bleu", "ROUGE_L", "CIDEr"], "train.lr": 3e-3, "train.epochs": 1}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_thread_env(**extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", **extra}


def _rank_main(rank, port, worker, args):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), TQDM_DISABLE="1")
    torch.set_num_threads(1)
    try:
        worker(rank, *args)
    finally:
        distributed.leave()


def spawn(worker, *args) -> None:
    """worker(rank, *args) in WORLD processes joined as torchrun's ranks would be."""
    torch.multiprocessing.spawn(_rank_main, args=(free_port(), worker, args), nprocs=WORLD)


@pytest.fixture(autouse=True)
def each_test_on_one_thread(one_thread):
    """One thread, as each rank runs with here."""


DEMO_SPLITS = (60, 10, 20)


def small_config(data_root, run_root, **overrides):
    return small_demo.small_config(SMALL, data_root, run_root, **overrides)


# --- each rank's share of a batch: the weighted slices give the one-process gradient -------------

@pytest.mark.parametrize("reduction", ["caption_sum", "token_mean"])
@pytest.mark.parametrize("world_size", [2, 3, 8])
def test_weighted_slices_give_the_one_process_gradient(reduction, world_size):
    """DDP averages the ranks' gradients; computed here one slice after another in one process.
    7 captions of unequal lengths: slices of 3/4, 3/2/2, and 8 ranks leaves one slice empty."""
    model, config = tiny_model(**{"train.loss_reduction": reduction, "train.attention_penalty": 0.7})
    features, mask = tiny_clips(batch=7, dim=5)
    mask[3, 1:] = False
    targets = torch.tensor([[4, 5, 6, 2], [6, 2, 0, 0], [5, 2, 0, 0], [4, 4, 5, 2],
                            [2, 0, 0, 0], [6, 5, 2, 0], [4, 2, 0, 0]])
    inputs = torch.cat([torch.ones(7, 1, dtype=torch.long), targets[:, :-1]], 1)
    lengths = (targets != 0).sum(1)
    rows = torch.arange(7)

    def loss_of(share_rows):
        logits, alphas = model(features[share_rows], mask[share_rows], inputs[share_rows])
        return training_loss(logits, alphas, targets[share_rows], mask[share_rows], config.train)

    model.zero_grad()
    whole, _ = loss_of(rows)
    whole.backward()
    expected = [p.grad.clone() for p in model.parameters()]

    model.zero_grad()
    shown = 0.0
    for rank in range(world_size):
        share = batch_share(rows, lengths, reduction, rank, world_size)
        weighted, _ = share.weigh(*loss_of(share.rows))
        (weighted / world_size).backward()           # DDP's mean over the ranks
        shown += float(weighted.detach()) / world_size        # what train_epoch logs: Ranks.mean
    assert shown == pytest.approx(float(whole.detach()), rel=1e-5)
    for got, want in zip((p.grad for p in model.parameters()), expected):
        assert torch.allclose(got, want, atol=1e-6, rtol=1e-5)


def test_one_rank_leaves_the_loss_untouched_and_videos_are_dealt_by_id():
    rows = torch.arange(5)
    share = batch_share(rows, torch.ones(5), "caption_sum", 0, 1)
    loss, nll = torch.tensor(3.0), torch.tensor(2.0)
    assert share.rows is rows and share.weigh(loss, nll) == (loss, nll)
    assert batch_share(rows[:1], torch.ones(5), "caption_sum", 1, 2).caption_weight == 0.0
    paths = ["b/x.avi", "a/y.avi", "c/z.avi", "d/x.mp4"]          # x twice: one rank gets both
    key = lambda path: Path(path).stem
    shares = [shard(paths, key, rank, 2) for rank in range(2)]
    assert shares == [["b/x.avi", "c/z.avi", "d/x.mp4"], ["a/y.avi"]]
    assert sorted(shares[0] + shares[1]) == sorted(paths)


def test_without_torchrun_there_is_one_rank_and_no_process_group(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ranks = distributed.join(torch.device("cpu"))
    assert not ranks.active and ranks.is_main and not dist.is_initialized()
    model = torch.nn.Linear(2, 2)
    assert ranks.wrap(model) is model and ranks.broadcast("x") == "x" and ranks.gather(1) == [1]
    assert distributed.backend_for(torch.device("cuda", 0)) == "nccl"
    assert distributed.backend_for(torch.device("cpu")) == "gloo"


def _missing_corpus():
    raise DataError("corpus file data/x.json does not exist; prepare it first")


def _coordinate_on_rank(rank, out_dir):
    ranks = distributed.join(torch.device("cpu"))
    record = {"rank": ranks.rank, "world": ranks.world_size, "broadcast": ranks.broadcast(f"from {rank}"),
              "gathered": ranks.gather(rank), "mean": float(ranks.mean(torch.tensor(float(rank))))}
    try:
        ranks.on_main(_missing_corpus)
    except DataError as error:
        record["error"] = str(error)
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(record))


def test_ranks_agree_and_bad_input_on_rank_0_stops_every_rank(tmp_path):
    spawn(_coordinate_on_rank, str(tmp_path))
    for rank in range(WORLD):
        record = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert record == {"rank": rank, "world": WORLD, "broadcast": "from 0", "gathered": [0, 1],
                          "mean": 0.5, "error": "corpus file data/x.json does not exist; prepare it first"}


# --- training with 2 processes ------------------------------------------------------------------

def _train_on_rank(rank, config, record_dir):
    """train.train on this rank, recording every file it writes atomically."""
    import evaluation.predictions
    import utils
    written = []
    original = utils.atomic_write_bytes

    def recording(path, write):
        written.append(os.path.basename(path))
        original(path, write)
    utils.atomic_write_bytes = recording
    evaluation.predictions.atomic_write_bytes = recording
    scores = train_module.train(config)
    Path(record_dir, f"rank{rank}.json").write_text(json.dumps({"written": written, "scores": scores}))


def test_two_processes_train_as_one_and_only_rank_0_writes(data_root, tmp_path):
    one = small_config(data_root, tmp_path / "one")
    train_module.train(one)
    two = small_config(data_root, tmp_path / "two")
    spawn(_train_on_rank, two, str(tmp_path))

    run = train_module.run_id(one)
    a = checkpoints.load(str(tmp_path / "one" / run / "last.pt"))
    b = checkpoints.load(str(tmp_path / "two" / run / "last.pt"))
    assert (a["world_size"], b["world_size"], len(b["rng_of_ranks"])) == (1, WORLD, WORLD)
    assert a["progress"]["step"] == b["progress"]["step"] == 21          # 480 captions / 23
    for epoch_a, epoch_b in zip(a["progress"]["history"], b["progress"]["history"]):
        assert epoch_b["train_loss"] == pytest.approx(epoch_a["train_loss"], rel=1e-5)
        assert epoch_b["val_loss"] == pytest.approx(epoch_a["val_loss"], rel=1e-5)
    for name, tensor in a["model"].items():
        assert torch.allclose(tensor, b["model"][name], atol=1e-4), name

    records = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(WORLD)]
    assert records[1] == {"written": [], "scores": {}}
    assert sorted(set(records[0]["written"])) == sorted(
        ["best.pt", "last.pt", "test_predictions.json", "test_predictions.csv", "test_scores.json"])
    assert len(list((tmp_path / "two" / run).glob("events.out.tfevents.*"))) == 1
    assert records[0]["scores"]["CIDEr"] >= 0.0


def test_torchrun_training_killed_resumes_and_another_world_size_is_refused(data_root, tmp_path):
    config = small_config(data_root, tmp_path / "runs", **{"train.epochs": 2, "loader.batch_size": 40})
    port = str(free_port())
    command = TORCHRUN + ["--nproc_per_node", str(WORLD), "--master_addr", "127.0.0.1",
                          "--master_port", port, str(ROOT / "train.py")] + cli_args(config)
    run_dir = tmp_path / "runs" / train_module.run_id(config)
    process = subprocess.Popen(command, cwd=ROOT, env=one_thread_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while not (run_dir / "last.pt").exists():             # written at the end of epoch 1 of 2
        assert process.poll() is None, process.stdout.read().decode()
        assert time.time() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)                 # torchrun and both ranks at once
    process.wait()
    assert checkpoints.load(str(run_dir / "last.pt"))["progress"]["epoch"] == 1

    finished = subprocess.run(command, cwd=ROOT, env=one_thread_env(), capture_output=True,
                              text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "resuming" in finished.stdout
    assert finished.stdout.count("best checkpoint") == 1    # rank 1 prints nothing
    state = checkpoints.load(str(run_dir / "last.pt"))
    assert state["progress"]["epoch"] == 2 and state["world_size"] == WORLD
    assert [h["epoch"] for h in state["progress"]["history"]] == [1, 2]

    config.train.epochs = 3
    alone = subprocess.run([sys.executable, str(ROOT / "train.py")] + cli_args(config), cwd=ROOT,
                           env=one_thread_env(), capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2, alone.stderr[-2000:]
    assert "written by a run of 2 rank(s), but this run has 1" in alone.stderr
    assert "Traceback" not in alone.stderr


# --- feature extraction with 2 ranks ------------------------------------------------------------

def read_all(path):
    with h5py.File(path, "r") as f:
        return {key: (f[key][()], dict(f[key].attrs)) for key in f}


def test_torchrun_extraction_writes_what_one_process_writes_and_resumes_from_part_files(tmp_path):
    from extraction import build_backbone, extract_videos
    from extraction.parts import part_files, part_path
    videos = tmp_path / "videos"
    videos.mkdir()
    for clip in CLIPS:
        (videos / clip.name).write_bytes(clip.read_bytes())
    (videos / "bad.avi").write_bytes(b"\x00not a video\xff" * 3)
    backbone = build_backbone("EfficientNetLite0", device="cpu")
    one = tmp_path / "one.hdf5"
    extract_videos([str(c) for c in CLIPS], str(one), backbone, n_frames=2, progress=False)

    two = tmp_path / "two.hdf5"         # an interrupted 3-rank run left its rank 2's part file
    extract_videos([str(CLIPS[0])], part_path(str(two), 2), backbone, n_frames=2, progress=False)
    command = TORCHRUN + ["--nproc_per_node", str(WORLD), "--master_addr", "127.0.0.1",
                          "--master_port", str(free_port()), "-m", "extraction", "--videos",
                          str(videos), "--n_frames", "2", "--output", str(two), "--device", "cpu",
                          "--no_progress", "--workers", "1"]
    result = subprocess.run(command, cwd=ROOT, env=one_thread_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0                            # bad.avi: status 1, as one process
    assert result.stderr.count("cannot open video") == 1, result.stderr[-3000:]
    assert "1 videos already extracted" in result.stderr
    assert "2 videos written, 1 already there, 1 failed" in result.stdout
    assert part_files(str(two)) == []
    a, b = read_all(one), read_all(two)
    assert sorted(a) == sorted(b) == sorted(c.stem for c in CLIPS)
    for vid, (features, attrs) in a.items():
        np.testing.assert_array_equal(features, b[vid][0])
        assert attrs == b[vid][1]
