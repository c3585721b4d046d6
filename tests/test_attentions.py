"""Every registered attention (models/attention.py) held to its own definition: weights that sum
to 1 over the real frames and are exactly 0 on padded ones, padded frames that change nothing, and
weights that are softmax of the attention's energies computed frame by frame. A new registered
attention is tested here without an edit."""
import pytest
import torch

import config as config_module
from config import ConfigError
from models.attention import ATTENTIONS, build_attention
from models.sa_lstm import build_model
from tests.attention_definition import ALL_CHECKS
from tests.variants import attention_variants

VARIANTS = attention_variants() + [pytest.param({"model.frame_positions": True, "model.frame_projection": 6},
                                                id="soft+positions+projection")]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("overrides", VARIANTS)
def test_every_attention_keeps_its_definition(overrides, check):
    check(overrides)


def test_soft_attention_with_positions_is_checked_with_nonzero_positions():
    """frame_positions start at zero; the definition checks must see them matter."""
    from tests.attention_definition import attention_inputs, weights
    model, clips, hidden = attention_inputs({"model.frame_positions": True})
    before = weights(model, clips, hidden)
    with torch.no_grad():
        model.decoder.attention.positions.normal_()
    moved = model.encode(clips.frames, clips.mask, clips.rows_per_clip)
    assert not torch.allclose(weights(model, moved, hidden), before)


def test_attention_names_are_checked():
    config = config_module.build("Demo", **{"model.attention": "nope"})
    with pytest.raises(ConfigError) as error:
        build_attention(5, config.model, 4)
    assert "model.attention 'nope'" in str(error.value)
    assert all(name in str(error.value) for name in ATTENTIONS)


def test_general_attention_computes_w_v_once_per_clip_not_per_step():
    """Luong's W v_i is a per-clip key: a step multiplies h_{t-1} with it, and W^T h is never formed."""
    config = config_module.build("Demo", **{"model.attention": "general", "model.hidden_size": 16,
                                            "model.embedding_size": 8})
    model = build_model(config, 7, 5)
    clips = model.encode(torch.randn(2, 4, 5), torch.ones(2, 4, dtype=torch.bool), rows_per_clip=3)
    assert clips.keys.shape == (2, 4, 16)
    assert model.decoder.attention.query_map() is None
    assert model.decoder.maps().hidden_parts == [4 * 16, 1]          # W_h and w_beta only


def test_every_attention_has_a_run_folder_tag():
    tags = [cls.tag for cls in ATTENTIONS.values()]
    assert all(isinstance(tag, str) and tag and "/" not in tag for tag in tags)
    assert len(set(tags)) == len(tags)
