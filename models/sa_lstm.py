"""The whole SA-LSTM: frame encoder, an attention chosen by name, and the decoder step.

Its surface, which every search, the CUDA graphs and SCST's sampler use and nothing else:
- encode(features, mask, rows_per_clip): the clips, with what is computed once per clip;
- step(words, state, clips, width): one word for each of the `width` consecutive rows per clip;
- forward(features, mask, inputs): teacher forcing, the model's own fast path for training.
"""
from __future__ import annotations

import torch
from torch import nn

from models.attention import build_attention
from models.clips import EncodedClips
from models.decoder import DecoderStep
from models.encoder import FrameEncoder
from models.teacher_forcing import step_loop, teacher_forced


class SALSTM(nn.Module):
    def __init__(self, vocab_size: int, feature_size: int, model_config, n_frames: int):
        super().__init__()
        c = model_config
        self.encoder = FrameEncoder(feature_size, c.hidden_size, c.frame_projection, c.init_from_mean)
        size = self.encoder.output_size
        self.decoder = DecoderStep(vocab_size, size, c, build_attention(size, c, n_frames))
        self.vocab_size = vocab_size

    def encode(self, features: torch.Tensor, mask: torch.Tensor, rows_per_clip: int = 1) -> EncodedClips:
        """rows_per_clip: the most rows per clip the caller will step (beam width, samples)."""
        frames, state = self.encoder(features, mask)
        return EncodedClips(frames, self.decoder.attention.keys(frames), mask, state, rows_per_clip)

    def step(self, words: torch.Tensor, state: tuple, clips: EncodedClips, width: int = 1):
        """words (B*W,), state of B*W rows, W = width consecutive rows per clip -> logits (B*W, V),
        new state, attention (B*W, K)."""
        return self.decoder(words, state, clips, width)

    def forward(self, features, mask, inputs, own_word_probability: float = 0.0,
                fast: bool = True):
        """Teacher forcing: inputs (B, T) -> logits (B, T, V) and attention (B, T, K).

        own_word_probability > 0: scheduled sampling (train.scheduled_sampling). fast False: the
        plain loop over step() (train.fast_teacher_forcing), the same numbers up to rounding."""
        if own_word_probability > 0 or not fast:
            return step_loop(self, features, mask, inputs, own_word_probability)
        return teacher_forced(self, features, mask, inputs)


def build_model(config, vocab_size: int, feature_size: int) -> SALSTM:
    return SALSTM(vocab_size, feature_size, config.model, config.features.n_frames)
