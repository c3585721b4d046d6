"""Sampled captions, with the log-probabilities that self-critical training differentiates.

K captions per clip in one batched decode: the clip's K rows share it through SharedClipStep
(models/decoding.py), as the beams of beam search do, so the frames are projected once per clip.
Each step draws one word per row from softmax(logits / temperature) with <pad> and <bos>
excluded; a row that has said <eos> stops (its later tokens are <pad> and count for nothing);
the decode stops when every row has ended, or after max_len words with <eos> forced. Rows are
clip-major: clip b's samples are rows b*K .. b*K + K - 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID
from models.decoding import decoder_step_for, mask_impossible_words


def draw(probabilities: torch.Tensor) -> torch.Tensor:
    """One index per row, drawn in proportion to the row's probabilities: what
    torch.multinomial(probabilities, 1) draws, the same draws from the same generator (its
    exponential race: the argmax of p / q, q ~ Exp(1)), without the two host reads with which
    multinomial checks its input first: on a GPU each would wait for every queued kernel."""
    race = torch.empty_like(probabilities).exponential_(1)
    return (probabilities / race).argmax(-1)


@dataclass
class Sampled:
    tokens: torch.Tensor      # (B*K, L) word ids, <eos> then <pad>
    log_probs: torch.Tensor   # (B*K, L) log-probability of each token under the sampling policy
    mask: torch.Tensor        # (B*K, L) True for the caption's tokens, <eos> included

    def caption_log_probs(self) -> torch.Tensor:
        """(B*K,) sum of each caption's token log-probabilities."""
        return (self.log_probs * self.mask).sum(1)


def sample_captions(model, features, mask, samples_per_clip: int = 5, max_len: int = 30,
                    temperature: float = 1.0) -> Sampled:
    """K sampled captions per clip; gradients flow into log_probs unless run under no_grad.

    temperature 0 takes the most likely word each step (greedy search's captions). Draws use
    torch's global generator of the features' device (seeded, and saved with a run's RNG state)."""
    if samples_per_clip < 1:
        raise ValueError(f"samples_per_clip must be at least 1, got {samples_per_clip}")
    if temperature < 0:
        raise ValueError(f"temperature must be 0 or more, got {temperature}")
    width, device = samples_per_clip, features.device
    clips = model.encode(features, mask)
    step_fn = decoder_step_for(model, clips)
    state = tuple(s.repeat_interleave(width, dim=0) for s in clips.state)
    rows = features.shape[0] * width
    words = torch.full((rows,), BOS_ID, dtype=torch.long, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    tokens, log_probs, real = [], [], []
    for step in range(max_len + 1):
        logits, state, _ = step_fn(words, state, width)
        logits = logits.float()
        logits = logits / temperature if temperature > 0 else logits.clone()
        mask_impossible_words(logits, step, min_len=1)
        if step == max_len:                               # max_len words said: only <eos> is left
            logits[:, :EOS_ID] = float("-inf")            # in place, as mask_impossible_words
            logits[:, EOS_ID + 1:] = float("-inf")
        step_log_probs = torch.log_softmax(logits, dim=-1)
        with torch.no_grad():
            if temperature > 0:
                drawn = draw(step_log_probs.exp())
            else:
                drawn = step_log_probs.argmax(-1)
        words = drawn.masked_fill(done, PAD_ID)
        tokens.append(words)
        log_probs.append(step_log_probs.gather(1, drawn.unsqueeze(1)).squeeze(1).masked_fill(done, 0.0))
        real.append(~done)
        done = done | (words == EOS_ID)
        if bool(done.all()):
            break
    return Sampled(torch.stack(tokens, 1), torch.stack(log_probs, 1), torch.stack(real, 1))
