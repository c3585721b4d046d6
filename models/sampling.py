"""Captions made one word per row and step: greedy search, sampled captions (the `sample` search
and self-critical training), each choosing its words its own way in one loop.

A clip may have several rows (K samples): its rows share it (the model's step with
width K), so nothing per clip is repeated. Every row stops at <eos> (its later tokens are <pad>
and count for nothing); the loop stops when every row has ended, or after max_len words with
<eos> forced (models/word_rules.py). Rows are clip-major: clip b's rows are b*K .. b*K + K - 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID
from models.word_rules import forbid_words


def draw(probabilities: torch.Tensor, generator=None) -> torch.Tensor:
    """One index per row, drawn in proportion to the row's probabilities: what
    torch.multinomial(probabilities, 1) draws, the same draws from the same generator (its
    exponential race: the argmax of p / q, q ~ Exp(1)), without the two host reads with which
    multinomial checks its input first: on a GPU each would wait for every queued kernel."""
    race = torch.empty_like(probabilities).exponential_(1, generator=generator)
    return (probabilities / race).argmax(-1)


def nucleus(probabilities: torch.Tensor, top_p: float) -> torch.Tensor:
    """Top-p (Holtzman et al. 2020): each row's most likely words whose probabilities first reach
    top_p together (at least one), the rest set to 0; not renormalised (draw needs no sum of 1)."""
    if top_p >= 1.0:
        return probabilities
    ordered, order = probabilities.sort(dim=-1, descending=True)
    before = ordered.cumsum(-1) - ordered               # the mass of the more likely words
    ordered = ordered.masked_fill(before >= top_p, 0.0)
    return torch.zeros_like(probabilities).scatter(-1, order, ordered)


@dataclass
class Rows:
    tokens: torch.Tensor      # (N, L) word ids, <eos> then <pad>
    log_probs: torch.Tensor   # (N, L) log-probability of each token as the chooser scored it
    mask: torch.Tensor        # (N, L) True for the caption's tokens, <eos> included
    attention: torch.Tensor   # (N, L, K), zero after the caption
    total: torch.Tensor       # (N,) sum of log_probs, step by step

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(1)

    def caption_log_probs(self) -> torch.Tensor:
        """(N,) sum of each caption's token log-probabilities."""
        return (self.log_probs * self.mask).sum(1)


def decode_rows(model, features, mask, rows_per_clip: int, choose, max_len: int, min_len: int,
                stop_early: bool = True) -> Rows:
    """rows_per_clip rows per clip, each step's words from choose(logits, step, min_len, max_len)
    -> (words, their log-probabilities); stop_early False runs all max_len + 1 steps with no host
    sync (a CUDA graph)."""
    width, device = rows_per_clip, features.device
    clips = model.encode(features, mask, rows_per_clip=width)
    state = clips.state if width == 1 else tuple(s.repeat_interleave(width, dim=0) for s in clips.state)
    rows = features.shape[0] * width
    words = torch.full((rows,), BOS_ID, dtype=torch.long, device=device)
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    total = torch.zeros(rows, device=device)
    tokens, log_probs, real, alphas = [], [], [], []
    for step in range(max_len + 1):
        logits, state, alpha = model.step(words, state, clips, width)
        chosen, chosen_log_probs = choose(logits, step, min_len, max_len)
        words = chosen.masked_fill(done, PAD_ID)
        chosen_log_probs = chosen_log_probs.masked_fill(done, 0.0)
        total = total + chosen_log_probs
        tokens.append(words)
        log_probs.append(chosen_log_probs)
        real.append(~done)
        alphas.append(alpha.masked_fill(done.unsqueeze(-1), 0.0))
        done = done | (words == EOS_ID)
        if stop_early and bool(done.all()):
            break
    return Rows(torch.stack(tokens, 1), torch.stack(log_probs, 1), torch.stack(real, 1),
                torch.stack(alphas, 1), total)


def most_likely(logits, step: int, min_len: int, max_len: int) -> tuple:
    """Greedy search's choice: the most likely allowed word, scored by the model's log-probability."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    forbid_words(log_probs, step, min_len, max_len)
    best, words = log_probs.max(-1)
    return words, best


def sampled(temperature: float = 1.0, top_p: float = 1.0, generator=None, policy_log_probs: bool = True):
    """A choice that draws each word from softmax(logits / temperature) over the allowed words,
    cut to the top_p nucleus; temperature 0 takes the most likely word.

    policy_log_probs True scores a word under that sampling policy (what self-critical training
    differentiates); False under the model itself (what the sample search ranks by)."""
    def choose(logits, step: int, min_len: int, max_len: int) -> tuple:
        logits = logits.float()
        policy = logits / temperature if temperature > 0 else logits.clone()
        forbid_words(policy, step, min_len, max_len)
        policy = torch.log_softmax(policy, dim=-1)
        with torch.no_grad():
            if temperature > 0:
                drawn = draw(nucleus(policy.exp(), top_p), generator)
            else:
                drawn = policy.argmax(-1)
        if policy_log_probs:
            scored = policy
        else:
            scored = torch.log_softmax(logits, dim=-1)
            forbid_words(scored, step, min_len, max_len)
        return drawn, scored.gather(1, drawn.unsqueeze(1)).squeeze(1)
    return choose


def sample_captions(model, features, mask, samples_per_clip: int = 5, max_len: int = 30,
                    temperature: float = 1.0, min_len: int = 1) -> Rows:
    """K sampled captions per clip for self-critical training; gradients flow into log_probs
    unless run under no_grad.

    temperature 0 takes the most likely word each step (greedy search's captions). Draws use
    torch's global generator of the features' device (seeded, and saved with a run's RNG state)."""
    if samples_per_clip < 1:
        raise ValueError(f"samples_per_clip must be at least 1, got {samples_per_clip}")
    if temperature < 0:
        raise ValueError(f"temperature must be 0 or more, got {temperature}")
    return decode_rows(model, features, mask, samples_per_clip, sampled(temperature), max_len, min_len)
