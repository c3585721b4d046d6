"""Attentions over the K frames, registered by name (model.attention). A new attention goes here.

An attention is one class, registered with @register_attention, with these members:
- name (what model.attention says) and tag (its short name in run folders);
- build(feature_size, model_config, n_frames): the module, from the (projected) feature size, the
  model config and K;
- keys(frames): whatever it needs of each clip's frames, computed once per clip (EncodedClips.keys);
- weights(hidden, clips, width, query): alpha (B, width, K), one row of weights over the K frames for
  each of the `width` rows a clip has (1 in training, W beams or K samples in decoding), summing to 1
  over the clip's real frames and exactly 0 on its padded ones;
- frame_energy(hidden, frame, index): its energy e_i for one h_{t-1} (H,) and one frame v_i (F,),
  written plainly: the tests hold weights() to softmax of these over the real frames.
Optional speed-up: query_map() returns a bias-free nn.Linear of h_{t-1} that the decoder may stack
into its one product over h_{t-1} (models/decoder.py); weights() then receives its result as query
(None otherwise, and the attention reads hidden itself).
"""
from __future__ import annotations

import torch
from torch import nn

from config import ConfigError

ATTENTIONS = {}          # name -> class


def register_attention(cls):
    """Class decorator: makes cls choosable as model.attention = cls.name."""
    if cls.name in ATTENTIONS and ATTENTIONS[cls.name] is not cls:
        raise ValueError(f"an attention named {cls.name!r} is registered already")
    ATTENTIONS[cls.name] = cls
    return cls


def attention_name(model_config) -> str:
    """The registered name model_config asks for: model.use_attention False means mean pooling."""
    return model_config.attention if model_config.use_attention else "mean"


def check_attention_config(model_config) -> None:
    """ConfigError naming the field and the registered attentions when the choice is not one."""
    if model_config.attention not in ATTENTIONS:
        raise ConfigError(f"model.attention {model_config.attention!r} is not a registered attention; "
                          f"choose one of {', '.join(sorted(ATTENTIONS))}")
    if not model_config.use_attention and model_config.attention not in ("soft", "mean"):
        raise ConfigError(f"model.use_attention false means mean pooling, but model.attention is "
                          f"{model_config.attention!r}: drop --model.use_attention or set "
                          "--model.attention mean")


def build_attention(feature_size: int, model_config, n_frames: int) -> nn.Module:
    check_attention_config(model_config)
    return ATTENTIONS[attention_name(model_config)].build(feature_size, model_config, n_frames)


class Attention(nn.Module):
    """What every attention has; subclasses set name and tag and write the members above."""

    name = tag = None

    def query_map(self):
        return None

    @staticmethod
    def masked_softmax(energy: torch.Tensor, clips) -> torch.Tensor:
        """energy (B, width, K) -> alpha: softmax over each clip's real frames, 0 on padded ones."""
        padding = ~clips.mask.unsqueeze(1)
        return torch.softmax(energy.masked_fill(padding, float("-inf")), dim=-1)


@register_attention
class TemporalAttention(Attention):
    """The paper's soft attention: e_i = w^T tanh(W_a h_{t-1} + U_a v_i + b_a); alpha = softmax
    over real frames. U_a v_i does not depend on t: keys() computes it once per clip."""

    name, tag = "soft", "att"

    def __init__(self, feature_size: int, hidden_size: int, attention_size: int,
                 n_frames: int, frame_positions: bool = False):
        super().__init__()
        self.key = nn.Linear(feature_size, attention_size, bias=True)       # U_a, b_a
        self.query = nn.Linear(hidden_size, attention_size, bias=False)     # W_a
        self.score = nn.Linear(attention_size, 1, bias=False)              # w
        # Beyond the paper (off in its presets): a learned position code lets attention see
        # frame order, which content-based attention cannot.
        self.positions = nn.Parameter(torch.zeros(n_frames, attention_size)) if frame_positions else None

    @classmethod
    def build(cls, feature_size: int, c, n_frames: int) -> "TemporalAttention":
        return cls(feature_size, c.hidden_size, c.attention_size or feature_size, n_frames,
                   c.frame_positions)

    def query_map(self):
        return self.query

    def keys(self, frames: torch.Tensor) -> torch.Tensor:
        keys = self.key(frames)
        if self.positions is not None:
            keys = keys + self.positions[: keys.shape[1]]
        return keys

    def weights(self, hidden, clips, width: int, query=None) -> torch.Tensor:
        """query = W_a h_{t-1} (from the decoder's stacked product, or here) -> alpha (B, width, K)."""
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

    @classmethod
    def build(cls, feature_size: int, c, n_frames: int) -> "MeanPooling":
        return cls()

    def keys(self, frames: torch.Tensor) -> torch.Tensor:
        return frames[..., :0]

    def weights(self, hidden, clips, width: int, query=None) -> torch.Tensor:
        batch, n_frames = clips.mask.shape
        return clips.mean_weights.expand(batch, width, n_frames)

    def frame_energy(self, hidden, frame, index: int) -> torch.Tensor:
        return hidden.new_zeros(())


@register_attention
class GeneralAttention(Attention):
    """Luong et al. 2015's multiplicative ("general") attention: e_i = h_{t-1}^T W v_i.

    W v_i does not depend on t: keys() computes it once per clip, and a step is one batched
    product of h_{t-1} with it (where W^T h_{t-1} would be a product per step and row)."""

    name, tag = "general", "general"

    def __init__(self, feature_size: int, hidden_size: int):
        super().__init__()
        self.key = nn.Linear(feature_size, hidden_size, bias=False)         # W

    @classmethod
    def build(cls, feature_size: int, c, n_frames: int) -> "GeneralAttention":
        return cls(feature_size, c.hidden_size)

    def keys(self, frames: torch.Tensor) -> torch.Tensor:
        return self.key(frames)                                             # (B, K, H)

    def weights(self, hidden, clips, width: int, query=None) -> torch.Tensor:
        batch = clips.keys.shape[0]
        energy = torch.bmm(hidden.view(batch, width, -1), clips.keys.transpose(1, 2))   # (B, W, K)
        return self.masked_softmax(energy, clips)

    def frame_energy(self, hidden, frame, index: int) -> torch.Tensor:
        return hidden @ (self.key.weight @ frame)
