"""References the tests hold the model's fast code to, written plainly and independently of it.

- reference_alpha: an attention's weights from its own frame_energy (models/attention.py), one
  frame at a time, softmax over the real frames;
- reference_step: the decoder step written plainly (bench/plain_decode.py), any attention other
  than the paper's two by reference_alpha; the paper's equations written a second time;
- reference_beam_search: the plain beam search of bench/plain_decode.py with reference_step.
"""
from __future__ import annotations

import torch

from bench.plain_decode import plain_alpha, plain_beam_search, plain_step, repeated  # noqa: F401


def reference_energies(attention, hidden, clips) -> torch.Tensor:
    """(B, K) energies from attention.frame_energy, one clip, frame and h_{t-1} at a time."""
    rows = []
    for b in range(hidden.shape[0]):
        rows.append(torch.stack([attention.frame_energy(hidden[b], clips.frames[b, i], i)
                                 for i in range(clips.frames.shape[1])]))
    return torch.stack(rows)


def reference_alpha(attention, hidden, clips) -> torch.Tensor:
    """(B, K) softmax of the reference energies over each clip's real frames, 0 on padded ones."""
    energies = reference_energies(attention, hidden, clips)
    return torch.softmax(energies.masked_fill(~clips.mask, float("-inf")), dim=-1)


def reference_step(model, previous_word, state, clips):
    def alpha_of(attention, hidden, clips):
        if attention.name in ("soft", "mean"):
            return plain_alpha(attention, hidden, clips)
        return reference_alpha(attention, hidden, clips)
    return plain_step(model, previous_word, state, clips, alpha_of)


def reference_beam_search(model, features, mask, beam_size: int = 5, max_len: int = 30, min_len: int = 1,
                          length_penalty: float = 0.0):
    return plain_beam_search(model, features, mask, beam_size, max_len, min_len, length_penalty, reference_step)
