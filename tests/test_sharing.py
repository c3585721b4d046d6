"""A run exported as a shared folder loads, from the folder and from the Hugging Face Hub's cache,
into the payload of its best.pt, and run.py gives the same bytes from each; a folder whose files
were edited or cut short is one line of error."""
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
import torch

import train as train_module
from models import checkpoints
from sharing import hub
from sharing.__main__ import main as sharing_main, training_command
from tests.small_demo import build_small_demo, run_py, single_thread, small_config

SMALL = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention_size": 8,
         "loader.batch_size": 20, "loader.eval_batch_size": 16, "eval.beam_size": 2, "eval.max_len": 8,
         "eval.min_len": 4, "train.lr": 1e-2, "train.device": "cpu", "train.epochs": 3, "eval.metrics": [],
         "train.select_metric": "CIDEr-D"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUTS = ("test_predictions.json", "test_predictions.csv", "test_scores.json")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = build_small_demo(tmp_path_factory, (20, 4, 6))
    config = small_config(SMALL, root, tmp_path_factory.mktemp("runs"))
    with single_thread():
        train_module.train(config)
    return os.path.join(config.train.run_root, train_module.run_id(config))


@pytest.fixture(scope="module")
def shared(run_dir):
    assert sharing_main(["export", run_dir]) == 0
    return os.path.join(run_dir, "shared")


def copy_of(shared, tmp_path) -> str:
    folder = str(tmp_path / "copy")
    shutil.copytree(shared, folder)
    return folder


def test_the_folder_holds_json_safetensors_and_a_model_card(run_dir, shared):
    assert sorted(os.listdir(shared)) == ["README.md", "config.json", "model.safetensors",
                                          "test_scores.json", "vocab.json"]
    card = open(os.path.join(shared, "README.md")).read()
    best = checkpoints.load(os.path.join(run_dir, "best.pt"))
    scores = json.load(open(os.path.join(run_dir, "test_scores.json")))
    assert "SA-LSTM on Demo: Appearance+Motion" in card and f"{scores['CIDEr-D']:.1f}" in card
    assert training_command(best["config"]) in card
    assert json.load(open(os.path.join(shared, "test_scores.json"))) == scores


def test_the_training_command_rebuilds_the_config(run_dir):
    import config as config_module
    saved = checkpoints.load(os.path.join(run_dir, "best.pt"))["config"]
    words = shlex.split(training_command(saved))[2:]
    parser = config_module.argument_parser("")
    config_module.add_arguments(parser)
    assert config_module.from_args(parser.parse_args(words)).to_dict() == saved


def test_the_folder_loads_into_best_pts_payload(run_dir, shared):
    best = checkpoints.load(os.path.join(run_dir, "best.pt"))
    loaded = checkpoints.load(shared)
    assert loaded.keys() == best.keys()
    assert {k: v for k, v in loaded.items() if k != "model"} == {k: v for k, v in best.items() if k != "model"}
    assert loaded["model"].keys() == best["model"].keys()
    for name, tensor in best["model"].items():
        assert loaded["model"][name].dtype == tensor.dtype and torch.equal(loaded["model"][name], tensor)


def outputs(folder, checkpoint) -> dict:
    """The output files' bytes, the scores' record of their checkpoint checked and left out."""
    files = {name: open(os.path.join(folder, name), "rb").read() for name in OUTPUTS}
    scores = json.loads(files["test_scores.json"])
    assert scores["made_by"].pop("checkpoint") == checkpoint
    files["test_scores.json"] = scores
    return files


def hub_cache(shared, root) -> str:
    """The Hugging Face Hub cache as a download of user/sa-lstm-demo leaves it."""
    repo = root / "hub" / "models--user--sa-lstm-demo"
    revision = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(shared, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return str(root / "hub")


def test_run_py_gives_the_same_bytes_from_best_pt_the_folder_and_the_hub(run_dir, shared, tmp_path, capsys):
    with single_thread():
        assert run_py(capsys, "--checkpoint", os.path.join(run_dir, "best.pt"), "--out", tmp_path / "pt")[0] == 0
        assert run_py(capsys, "--checkpoint", shared, "--out", tmp_path / "folder")[0] == 0
    expected = outputs(tmp_path / "pt", os.path.join(run_dir, "best.pt"))
    assert expected["test_scores.json"]["CIDEr-D"] > 0
    assert outputs(tmp_path / "folder", os.path.abspath(shared)) == expected
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": hub_cache(shared, tmp_path),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "run.py", "--checkpoint", "user/sa-lstm-demo", "--out",
                           str(tmp_path / "hub_out")], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert outputs(tmp_path / "hub_out", "user/sa-lstm-demo") == expected
    done = subprocess.run([sys.executable, "run.py", "--checkpoint", "user/no-such-model"], cwd=REPO,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "no model of that id could be had from the Hugging Face Hub" in done.stderr


def tamper_config(folder):
    path = os.path.join(folder, "config.json")
    entries = json.load(open(path))
    entries["config"]["model"]["dropout"] = 0.1
    json.dump(entries, open(path, "w"), indent=1)
    return "config.json is not the file exported with model.safetensors"


def truncate_weights(folder):
    path = os.path.join(folder, "model.safetensors")
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) - 100)
    return "model.safetensors cannot be read"


def bad_json(folder):
    open(os.path.join(folder, "vocab.json"), "w").write("[\"<pad>\", ")
    return "vocab.json is not the file exported with model.safetensors"


@pytest.mark.parametrize("damage", [tamper_config, truncate_weights, bad_json])
def test_a_damaged_folder_is_one_line_of_error(shared, tmp_path, capsys, damage):
    folder = copy_of(shared, tmp_path)
    words = damage(folder)
    status, err = run_py(capsys, "--checkpoint", folder)
    assert status == 2 and len(err.strip().splitlines()) == 1 and words in err, err


def test_export_never_overwrites(run_dir, shared, capsys):
    before = open(os.path.join(shared, "model.safetensors"), "rb").read()
    assert sharing_main(["export", run_dir]) == 2
    assert "exists" in capsys.readouterr().err
    assert open(os.path.join(shared, "model.safetensors"), "rb").read() == before
    assert sharing_main(["export", os.path.dirname(run_dir)]) == 2
    assert "holds no best.pt" in capsys.readouterr().err


def test_upload_checks_the_folder_then_sends_it(shared, tmp_path, monkeypatch, capsys):
    import huggingface_hub
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **options):
            calls.append(("create_repo", repo_id, options))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **options):
            calls.append(("upload_folder", options))
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    folder = copy_of(shared, tmp_path)
    truncate_weights(folder)
    assert sharing_main(["upload", folder, "user/name"]) == 2 and calls == []
    assert "cannot be read" in capsys.readouterr().err
    assert sharing_main(["upload", shared, "user/name"]) == 0
    assert [call[0] for call in calls] == ["create_repo", "upload_folder"]
    assert calls[1][1]["folder_path"] == shared and calls[1][1]["repo_id"] == "user/name"
    assert hub.upload.__module__ == "sharing.hub"
