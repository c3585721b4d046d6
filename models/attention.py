"""Attentions over the K frames, registered by name (model.attention); docs/extending.md adds one."""
from __future__ import annotations

import torch
from torch import nn

import config as config_module
from config import check_variant

ATTENTIONS = config_module.VARIANTS["model.attention"] = {}      # name -> class


def register_attention(cls):
    if cls.name in ATTENTIONS and ATTENTIONS[cls.name] is not cls:
        raise ValueError(f"an attention named {cls.name!r} is registered already")
    ATTENTIONS[cls.name] = cls
    return cls


def build_attention(feature_size: int, model_config, n_frames: int) -> nn.Module:
    check_variant("model.attention", model_config)
    return ATTENTIONS[model_config.attention].build(feature_size, model_config, n_frames)


class Attention(nn.Module):
    """name, tag (for run folders), fields (the model fields it reads), build(), keys(frames) (once per
    clip), weights(hidden, clips, width, query) -> alpha (B, width, K), frame_energy(hidden, frame, index)
    (e_i written plainly, for the tests); query_map() may offer a bias-free nn.Linear of h_{t-1}."""
    name, tag, fields = None, None, ()

    @classmethod
    def build(cls, feature_size: int, model_config, n_frames: int) -> "Attention":
        return cls()

    def query_map(self):
        return None

    @staticmethod
    def masked_softmax(energy: torch.Tensor, clips) -> torch.Tensor:
        """energy (B, width, K) -> alpha over each clip's real frames."""
        return torch.softmax(energy.masked_fill(~clips.mask.unsqueeze(1), float("-inf")), dim=-1)


@register_attention
class TemporalAttention(Attention):
    """The paper's soft attention: e_i = w^T tanh(W_a h_{t-1} + U_a v_i + b_a), U_a v_i once per clip."""

    name, tag, fields = "soft", "att", ("attention_size", "frame_positions")

    def __init__(self, feature_size: int, hidden_size: int, attention_size: int,
                 n_frames: int, frame_positions: bool = False):
        super().__init__()
        self.key = nn.Linear(feature_size, attention_size, bias=True)       # U_a, b_a
        self.query = nn.Linear(hidden_size, attention_size, bias=False)     # W_a
        self.score = nn.Linear(attention_size, 1, bias=False)              # w
        # beyond the paper: a learned position code lets attention see frame order
        self.positions = nn.Parameter(torch.zeros(n_frames, attention_size)) if frame_positions else None

    @classmethod
    def build(cls, feature_size: int, model_config, n_frames: int) -> "TemporalAttention":
        c = model_config
        return cls(feature_size, c.hidden_size, c.attention_size or feature_size, n_frames, c.frame_positions)

    def query_map(self):
        return self.query

    def keys(self, frames: torch.Tensor) -> torch.Tensor:
        keys = self.key(frames)
        return keys if self.positions is None else keys + self.positions[: keys.shape[1]]

    def weights(self, hidden, clips, width: int, query=None) -> torch.Tensor:
        """query = W_a h_{t-1} (from the decoder's stacked product, or here) -> alpha."""
        query = self.query(hidden) if query is None else query
        batch, n_frames, size = clips.keys.shape
        keys = clips.keys.unsqueeze(1)                                        # (B, 1, K, A)
        hidden = torch.tanh(keys + query.view(batch, width, 1, -1)).view(-1, size)
        # w^T tanh(...), with padded frames' energies -inf: their fill folded into the product
        energy = torch.addmm(clips.padding_bias(width), hidden, self.score.weight.t())
        return torch.softmax(energy.view(batch, width, n_frames), dim=-1)

    def frame_energy(self, hidden, frame, index: int) -> torch.Tensor:
        inner = self.query.weight @ hidden + self.key.weight @ frame + self.key.bias
        if self.positions is not None:
            inner = inner + self.positions[index]
        return self.score.weight[0] @ torch.tanh(inner)


@register_attention
class MeanPooling(Attention):
    """The paper's baseline: every real frame weighs the same at every step (e_i = 0)."""

    name, tag = "mean", "mean"

    def keys(self, frames: torch.Tensor) -> torch.Tensor:
        return frames[..., :0]

    def weights(self, hidden, clips, width: int, query=None) -> torch.Tensor:
        return clips.mean_weights().expand(-1, width, -1)

    def frame_energy(self, hidden, frame, index: int) -> torch.Tensor:
        return hidden.new_zeros(())


@register_attention
class GeneralAttention(Attention):
    """Luong et al. 2015's "general" attention: e_i = h_{t-1}^T W v_i, W v_i kept per clip."""

    name, tag = "general", "general"

    def __init__(self, feature_size: int, hidden_size: int):
        super().__init__()
        self.key = nn.Linear(feature_size, hidden_size, bias=False)         # W

    @classmethod
    def build(cls, feature_size: int, model_config, n_frames: int) -> "GeneralAttention":
        return cls(feature_size, model_config.hidden_size)

    def keys(self, frames: torch.Tensor) -> torch.Tensor:
        return self.key(frames)                                             # (B, K, H)

    def weights(self, hidden, clips, width: int, query=None) -> torch.Tensor:
        energy = torch.bmm(hidden.view(len(clips.keys), width, -1), clips.keys.transpose(1, 2))   # (B, W, K)
        return self.masked_softmax(energy, clips)

    def frame_energy(self, hidden, frame, index: int) -> torch.Tensor:
        return hidden @ (self.key.weight @ frame)
