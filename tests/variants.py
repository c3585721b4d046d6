"""The model variants the equivalence tests run over: every registered attention, then the
paper's other switches, each with a test id that names it (read from the registries, so a new
attention is tested without an edit and renumbers nothing)."""
import pytest

from models.attention import ATTENTIONS
from models.searches import SEARCHES


def attention_variants() -> list:
    return [pytest.param({"model.attention": name}, id=name) for name in sorted(ATTENTIONS)]


def model_variants() -> list:
    return attention_variants() + [
        pytest.param({"model.use_selector": False}, id="no_selector"),
        pytest.param({"model.deep_output": False}, id="no_deep_output"),
        pytest.param({"model.frame_projection": 6, "model.frame_positions": True}, id="projection+positions"),
        pytest.param({"model.init_from_mean": False}, id="zero_init"),
        pytest.param({"model.attention": "general", "model.frame_projection": 6}, id="general+projection")]


def search_names() -> list:
    return sorted(SEARCHES)


def settings_id(settings) -> str:
    """A test id naming a dict of settings by what it sets: {"search": "beam"} -> beam,
    {"eval.beam_size": 1} -> beam_size=1, {} -> defaults."""
    if not isinstance(settings, dict):
        return str(settings)
    return ",".join(str(v) if k == "search" else f"{k.split('.')[-1]}={v}"
                    for k, v in settings.items()) or "defaults"
