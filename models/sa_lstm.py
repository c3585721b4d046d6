"""The whole SA-LSTM: frame encoder, temporal attention and the decoder step."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import nn

from models.attention import MeanPooling, TemporalAttention
from models.decoder import DecoderStep
from models.encoder import FrameEncoder
from models.teacher_forcing import scheduled_sampling, teacher_forced


@dataclass
class EncodedClips:
    frames: torch.Tensor   # (B, K, F): projected frame features, padding zeroed
    keys: torch.Tensor     # (B, K, A): U_a v_i + b_a, computed once per clip
    mask: torch.Tensor     # (B, K)
    state: tuple           # (h_0, c_0)

    padding_biases: dict = field(default_factory=dict, repr=False)   # by width, see padding_bias

    def padding_bias(self, width: int) -> torch.Tensor:
        """(B * width * K, 1): -inf on padded frames, which attention must not weigh, 0 on real
        ones, for `width` rows per clip; made once per width, added to the attention energies
        inside their product (one operator a step instead of a product and a fill)."""
        if width not in self.padding_biases:
            padding = ~self.mask.unsqueeze(1).expand(-1, width, -1)
            self.padding_biases[width] = torch.zeros(padding.shape, dtype=self.keys.dtype,
                                                     device=self.keys.device).masked_fill(
                padding, float("-inf")).view(-1, 1)
        return self.padding_biases[width]

    @cached_property
    def mean_weights(self) -> torch.Tensor:
        """(B, 1, K) mean pooling's fixed weights: 1 / (real frames) on each real frame."""
        weights = self.mask.to(self.frames.dtype)
        return (weights / weights.sum(-1, keepdim=True).clamp(min=1)).unsqueeze(1)

    def repeat(self, times: int) -> "EncodedClips":
        """Each clip `times` times in a row (for the beams of beam search)."""
        rep = lambda t: t.repeat_interleave(times, dim=0)
        return EncodedClips(rep(self.frames), rep(self.keys), rep(self.mask),
                            tuple(rep(s) for s in self.state))


class SALSTM(nn.Module):
    def __init__(self, vocab_size: int, feature_size: int, model_config, n_frames: int):
        super().__init__()
        c = model_config
        self.encoder = FrameEncoder(feature_size, c.hidden_size, c.frame_projection, c.init_from_mean)
        size = self.encoder.output_size
        attention = (TemporalAttention(size, c.hidden_size, c.attention_size or size, n_frames,
                                       c.frame_positions)
                     if c.use_attention else MeanPooling())
        self.decoder = DecoderStep(vocab_size, size, c, attention)
        self.vocab_size = vocab_size
        self.fast_teacher_forcing = True

    def encode(self, features: torch.Tensor, mask: torch.Tensor) -> EncodedClips:
        frames, state = self.encoder(features, mask)
        return EncodedClips(frames, self.decoder.attention.keys(frames), mask, state)

    def step(self, previous_word: torch.Tensor, state: tuple, clips: EncodedClips):
        return self.decoder(previous_word, state, clips)

    def forward(self, features, mask, inputs, own_word_probability: float = 0.0):
        """Teacher forcing: inputs (B, T) -> logits (B, T, V) and attention (B, T, K).

        own_word_probability > 0: scheduled sampling (train.scheduled_sampling)."""
        if own_word_probability > 0:
            return scheduled_sampling(self, features, mask, inputs, own_word_probability)
        if self.fast_teacher_forcing:
            return teacher_forced(self, features, mask, inputs)
        return self.forward_stepwise(features, mask, inputs)

    def forward_stepwise(self, features, mask, inputs):
        """The plain loop over DecoderStep: the reference the fast path is tested against."""
        clips = self.encode(features, mask)
        state, logits, alphas = clips.state, [], []
        for t in range(inputs.shape[1]):
            step_logits, state, alpha = self.step(inputs[:, t], state, clips)
            logits.append(step_logits)
            alphas.append(alpha)
        return torch.stack(logits, 1), torch.stack(alphas, 1)


def build_model(config, vocab_size: int, feature_size: int) -> SALSTM:
    return SALSTM(vocab_size, feature_size, config.model, config.features.n_frames)
