"""run.py's command line refuses what a checkpoint cannot honour, before any work, naming the fix."""
import os

import pytest

import config as config_module
import run as run_module
from models import checkpoints
from models.sa_lstm import build_model
from splits.layout import corpus_paths
from tests.small_demo import run_py
from utils import DataError

VOCAB = ["<pad>", "<bos>", "<eos>", "<unk>", "shape"]


@pytest.fixture
def checkpoint(tmp_path):
    """An untrained Demo checkpoint: the checks below come before any data is read."""
    config = config_module.build("Demo", **{"model.hidden_size": 8, "model.embedding_size": 4,
                                            "model.attention_size": 4, "corpus.data_root": str(tmp_path)})
    model = build_model(config, len(VOCAB), 206)
    path = tmp_path / "run" / "best.pt"
    path.parent.mkdir()
    checkpoints.save(str(path), {"model": model.state_dict(), "config": config.to_dict(),
                                 "vocab": VOCAB, "feature_size": 206, "epoch": 0})
    return path


def test_a_preset_is_refused_the_checkpoint_has_its_config(checkpoint, capsys):
    status, err = run_py(capsys, "--checkpoint", checkpoint, "--preset", "MSVD")
    assert status == 2 and "--preset: run.py starts from the checkpoint's config" in err


def test_model_fields_are_refused_the_weights_fix_them(checkpoint, capsys):
    status, err = run_py(capsys, "--checkpoint", checkpoint, "--model.hidden_size", 10,
                         "--model.use_selector", "false", "--eval.beam_size", 2)
    assert status == 2
    assert "error: --model.hidden_size, --model.use_selector: the checkpoint's weights fix the model" in err


def test_an_unknown_split_lists_the_corpus_splits(checkpoint, capsys):
    status, err = run_py(capsys, "--checkpoint", checkpoint, "--split", "nosuch")
    assert status == 2
    assert "--split 'nosuch'" in err and "corpus Demo are train, val, test, and no split of that name" in err
    assert "python -m splits" not in err          # not a corpus to prepare: a split to choose


def test_a_split_prepared_under_another_name_is_accepted(tmp_path):
    config = config_module.build("Demo", **{"corpus.data_root": str(tmp_path)})
    prepared = corpus_paths(str(tmp_path), "Demo").split_json("val_subset")
    os.makedirs(os.path.dirname(prepared))
    open(prepared, "w").close()
    run_module.check_split(config, "val_subset", "best.pt")
    with pytest.raises(DataError, match="no split of that name is prepared"):
        run_module.check_split(config, "val_other", "best.pt")


def test_a_run_folder_given_as_checkpoint_names_the_file_to_give(checkpoint, capsys):
    status, err = run_py(capsys, "--checkpoint", checkpoint.parent)
    assert status == 2 and "is a folder" in err and str(checkpoint) in err


def test_a_missing_videos_folder_is_refused_before_decoding(checkpoint, tmp_path, capsys):
    status, err = run_py(capsys, "--checkpoint", checkpoint, "--pictures", 2,
                         "--videos", tmp_path / "no_such_folder")
    assert status == 2 and "no_such_folder: no such folder" in err


def test_ctrl_c_ends_with_one_line_and_status_130(checkpoint, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(run_module, "caption_split", interrupted)
    status, err = run_py(capsys, "--checkpoint", checkpoint)
    assert status == 130 and "Traceback" not in err
    assert err.strip() == ("interrupted: the predictions are written once the whole split is decoded; "
                           "run the same command again")


def test_an_output_folder_that_is_a_file_is_refused_before_decoding(checkpoint, tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    status, err = run_py(capsys, "--checkpoint", checkpoint, "--out", tmp_path / "afile")
    assert status == 2 and "--out" in err and "afile: a file is there; give a folder" in err


def test_a_bad_evaluation_value_is_refused_naming_the_field(checkpoint, capsys):
    status, err = run_py(capsys, "--checkpoint", checkpoint, "--eval.beam_size", 0)
    assert status == 2 and err.strip() == ("error: eval.beam_size must be at least 1, not 0; set it "
                                           "with --eval.beam_size VALUE")
