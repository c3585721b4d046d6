"""The model variants the equivalence tests run over: every registered attention, then the
paper's other switches (read from the registries, so a new attention is tested without an edit)."""
from models.attention import ATTENTIONS
from models.searches import SEARCHES


def attention_variants() -> list:
    return [{"model.attention": name} for name in sorted(ATTENTIONS)]


def model_variants() -> list:
    return attention_variants() + [
        {"model.use_attention": False}, {"model.use_selector": False}, {"model.deep_output": False},
        {"model.frame_projection": 6, "model.frame_positions": True}, {"model.init_from_mean": False},
        {"model.attention": "general", "model.frame_projection": 6}]


def search_names() -> list:
    return sorted(SEARCHES)
