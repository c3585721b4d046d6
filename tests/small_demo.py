"""A small demo corpus on disk and small configs, for the end-to-end tests of train.py and run.py."""
import contextlib
import os

import torch

import config as config_module
import run as run_module
from evaluation.scorer import why_no_scoring
from splits.Demo import build_demo
from tests.devices import TRAIN_DEVICE

# Where Java or pycocoevalcap is missing (as on many GPU servers), the runs go on without COCO
# scores (--eval.metrics "", best checkpoint by validation loss) and the tests check the rest.
SCORING = not why_no_scoring()
SMALL = {"model.hidden_size": 32, "model.embedding_size": 16, "model.attention_size": 16,
         "loader.batch_size": 20, "loader.eval_batch_size": 16, "eval.beam_size": 2,
         "eval.max_len": 12, "train.lr": 3e-3, "train.device": TRAIN_DEVICE,
         **({"eval.metrics": ["Bleu", "ROUGE_L", "CIDEr"]} if SCORING else
            {"eval.metrics": [], "train.select_metric": "loss"})}


def build_small_demo(tmp_path_factory, split_sizes: tuple) -> str:
    """A demo corpus of split_sizes (train, val, test) clips in a fresh folder; its data root."""
    root = str(tmp_path_factory.mktemp("data"))
    build_demo(config_module.build("Demo", **{"corpus.data_root": root}),
               split_sizes=split_sizes, show_progress=False)
    return root


def small_config(small: dict, data_root, run_root, **overrides):
    """The Demo preset with the small settings, the corpus in data_root and runs in run_root."""
    return config_module.build("Demo", **{**small, "corpus.data_root": data_root,
                                          "train.run_root": str(run_root), **overrides})


def last_checkpoints_alike(run_root_a, run_root_b, run: str) -> tuple:
    """(a, b): the last.pt of run under each run root, their weights checked equal to 1e-6 (a run
    resumed after an interruption against the same run uninterrupted)."""
    from models import checkpoints
    a = checkpoints.load(os.path.join(str(run_root_a), run, "last.pt"))
    b = checkpoints.load(os.path.join(str(run_root_b), run, "last.pt"))
    for name, tensor in a["model"].items():
        assert torch.allclose(tensor, b["model"][name], atol=1e-6), name
    return a, b


def cli_args(config) -> list:
    """The command-line options that rebuild config (for train.py in a subprocess)."""
    args = []
    for key in config_module.all_keys():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value is not None:
            args += [f"--{key}", ",".join(value) if isinstance(value, list) else str(value)]
    return args


@contextlib.contextmanager
def single_thread():
    """Ops this small gain nothing from threads, and on busy cores spinning threads stall them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_py(capsys, *args) -> tuple:
    """(exit status, stderr) of run.py's main; argparse's refusals exit through SystemExit."""
    try:
        status = run_module.main([str(a) for a in args])
    except SystemExit as stop:
        status = stop.code
    return status, capsys.readouterr().err
