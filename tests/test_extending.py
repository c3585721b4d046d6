"""The extension guide (docs/extending.md), as a test: a new attention and a new decoding strategy
are one class each, registered by name; with nothing else edited they train, decode, sample for
self-critical training and draw attention pictures, and the attention is held to its definition.

In a fork, put the classes in a file of models/plugins/ (or in models/attention.py and
models/searches.py) under @register_attention / @register_search; here the fixture registers them
for this file's tests only, and one test checks that a file in models/plugins/ is picked up.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import run as run_module
import train as train_module
from models import checkpoints
from models.attention import ATTENTIONS, Attention, register_attention
from training.self_critical import sample_captions
from models.searches import SEARCHES, Decoded, Search, decode, decode_rows, most_likely, register_search
from tests.attention_definition import ALL_CHECKS
from tests.small_demo import build_small_demo, single_thread, small_config


class StaticAttention(Attention):
    """A toy attention: e_i = u^T v_i, the same weights at every step (it ignores h_{t-1})."""

    name, tag = "static", "static"

    def __init__(self, feature_size: int):
        super().__init__()
        self.score = nn.Linear(feature_size, 1, bias=False)                    # u

    @classmethod
    def build(cls, feature_size: int, model_config, n_frames: int) -> "StaticAttention":
        return cls(feature_size)

    def keys(self, frames):
        return self.score(frames).squeeze(-1)            # (B, K): u^T v_i, once per clip

    def weights(self, hidden, clips, width: int, query=None):
        energy = clips.keys.unsqueeze(1).expand(-1, width, -1)                 # (B, width, K)
        return self.masked_softmax(energy, clips)

    def frame_energy(self, hidden, frame, index: int):
        return self.score.weight[0] @ frame


class AtLeastTwoWords(Search):
    """A toy search: greedy search whose captions never end before two words."""

    name, tag, graphable = "two_words", "two", True

    def run(self, model, features, mask, eval_config, stop_early: bool = True) -> Decoded:
        e = eval_config
        with torch.no_grad():
            rows = decode_rows(model, features, mask, 1, most_likely, e.max_len, max(e.min_len, 2),
                               stop_early)
        return Decoded(rows.tokens, rows.total, rows.attention, rows.lengths)


@pytest.fixture
def toys():
    register_attention(StaticAttention)
    register_search(AtLeastTwoWords)
    yield
    del ATTENTIONS[StaticAttention.name], SEARCHES[AtLeastTwoWords.name]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_the_toy_attention_keeps_its_definition(toys, check):
    check({"model.attention": "static"})


def test_a_toy_attention_and_search_train_decode_sample_and_draw(toys, tmp_path_factory, tmp_path):
    pytest.importorskip("matplotlib", reason="attention pictures need matplotlib")
    small = {"model.hidden_size": 16, "model.embedding_size": 8, "model.attention": "static",
             "eval.search": "two_words", "loader.batch_size": 20, "eval.max_len": 8, "train.epochs": 1,
             "train.device": "cpu", "eval.metrics": [], "train.select_metric": "CIDEr-D",
             "train.scst_epochs": 1, "train.scst_samples": 2}
    root = build_small_demo(tmp_path_factory, (20, 4, 4))
    config = small_config(small, root, tmp_path / "runs")
    with single_thread():
        # one cross-entropy epoch, then one self-critical epoch that samples with the toy attention;
        # validation decodes with the toy search
        train_module.train(config)
    best = str(tmp_path / "runs" / train_module.run_id(config) / "best.pt")
    model, saved, _ = checkpoints.model_from_checkpoint(checkpoints.load(best))
    assert isinstance(model.decoder.attention, StaticAttention) and saved.eval.search == "two_words"

    features, mask = torch.randn(3, 28, model.encoder.output_size), torch.ones(3, 28, dtype=torch.bool)
    mask[0, 5:] = False
    model.eval()
    toy = decode(model, features, mask, saved.eval)
    assert bool((toy.lengths >= 3).all())               # two words at least, then <eos>
    saved.eval.search, saved.eval.beam_size = "beam", 3
    beam = decode(model, features, mask, saved.eval)
    assert float(beam.attention[0, :, 5:].abs().max()) == 0.0
    model.train()
    sampled = sample_captions(model, features, mask, samples_per_clip=2, max_len=8)
    sampled.caption_log_probs().sum().backward()        # what self-critical training differentiates
    assert model.decoder.attention.score.weight.grad is not None

    out = tmp_path / "pictures"
    assert run_module.main(["--checkpoint", best, "--pictures", "1", "--eval.metrics", "",
                            "--out", str(out)]) == 0
    assert len(os.listdir(out / "attention")) == 1


PLUGIN = """
from torch import nn
from models.attention import Attention, register_attention
from models.searches import Search, register_search


@register_attention
class PluginAttention(Attention):
    name, tag = "plugin_attention", "plugin"


@register_search
class PluginSearch(Search):
    name, tag = "plugin_search", "plugin"
"""


def test_a_file_in_the_plugin_folder_is_registered_with_no_other_edit(tmp_path):
    """models/plugins/<file>.py is imported with the models package: its attention and search are
    registered, --help lists them, and whichever models module is imported first."""
    folder = Path(__file__).resolve().parents[1] / "models" / "plugins"
    made_folder = not folder.exists()
    folder.mkdir(exist_ok=True)
    plugin = folder / f"test_plugin_{os.getpid()}.py"
    plugin.write_text(PLUGIN)
    try:
        script = ("import sys; from models.searches import SEARCHES; from models.attention import ATTENTIONS; "
                  "print('plugin_attention' in ATTENTIONS, 'plugin_search' in SEARCHES)")
        found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               cwd=folder.parents[1], timeout=300)
        assert found.stdout.split() == ["True", "True"], found.stderr
        shown = subprocess.run([sys.executable, "train.py", "--help"], capture_output=True, text=True,
                               cwd=folder.parents[1], timeout=300)
        assert "plugin_attention" in shown.stdout and "plugin_search" in shown.stdout, shown.stderr
    finally:
        plugin.unlink()
        if made_folder:
            for leftover in folder.glob("__pycache__/*"):
                leftover.unlink()
            for empty in (folder / "__pycache__", folder):
                if empty.exists():
                    empty.rmdir()
