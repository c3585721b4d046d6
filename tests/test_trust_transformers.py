"""CLIP and VideoMAE weights that cannot be had: one line, at once."""
import os
import time

import pytest

pytest.importorskip("transformers", reason="the CLIP and VideoMAE backbones need transformers")

from extraction.backbones import build_backbone
from tests import tiny_transformers as tiny
from utils import DataError


def test_a_damaged_safetensors_file_is_one_line(tmp_path):
    folder = tiny.save_tiny_clip(str(tmp_path / "clip"))
    weights = os.path.join(folder, "model.safetensors")
    with open(weights, "r+b") as handle:
        handle.truncate(os.path.getsize(weights) // 2)
    with pytest.raises(DataError, match="are damaged .*download them again") as error:
        build_backbone("CLIP-ViT-B-32", folder, device="cpu")
    assert folder in str(error.value) and len(str(error.value).splitlines()) == 1


def test_without_network_an_id_fails_at_once(monkeypatch):
    import huggingface_hub.constants as hub
    from extraction import transformers_models
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")          # restored after the test, whatever it sets
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "ENDPOINT", "https://unreachable.invalid")   # no network to it
    monkeypatch.setattr(transformers_models.socket, "create_connection",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("unreachable")))
    started = time.perf_counter()
    with pytest.raises(DataError, match="neither in the cache nor downloadable"):
        build_backbone("CLIP-ViT-B-32", "nobody-here/no-such-model", device="cpu")
    assert time.perf_counter() - started < 5
