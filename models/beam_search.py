"""Beam search, batched over videos and beams with tensor operations only: no Python loop over
videos or beams, no .item() per hypothesis. Finished hypotheses are kept aside, so a caption
that has ended never occupies a beam slot, and scores are sums of log-probabilities.

Arranged for speed (bench/benchmark.py measures it; the results are the same as the plain
version up to float rounding, which can swap near-tied beams):
- The beams of a video share its clip (the model's step with width W): nothing per clip is
  copied per beam.
- Only the start beam is computed at the first step, not W copies of it.
- Candidates come from the top W words of each beam other than <eos>, instead of a sum over
  beams x vocabulary; <eos> is ranked apart, one candidate per beam, of which only the best
  can matter.
- Few operators a step, since a GPU step is bound by launches: impossible words masked with one
  in-place fill, a candidate's beam row and word read with one gather each from cached tables,
  only the best ended hypothesis of a step kept, no host sync before <eos> may come.
- Histories are kept as back-pointers and rebuilt once at the end, not copied every step
  (models/beam_history.py).
"""
from __future__ import annotations

import torch

from loader.vocabulary import BOS_ID, EOS_ID
from models.beam_history import BeamHistory
from models.decoded import Decoded
from models.word_rules import NEVER_NEXT, may_end, must_end


@torch.no_grad()
def beam_search(model, features, mask, beam_size: int = 5, max_len: int = 30, min_len: int = 1,
                length_penalty: float = 0.0) -> Decoded:
    """Best caption per video by sum of log-probs / length**length_penalty (length with <eos>).

    Each step the W best candidates that are not <eos> go on as the beams; the best <eos>
    candidate ends a hypothesis when it ranks among the W best of all candidates (so width 1 is
    greedy search), and an ended hypothesis never goes on. A video stops when no live beam can
    beat its best ended one.
    """
    history = beam_steps(model, features, mask, beam_size, max_len, min_len, length_penalty)
    return Decoded(*history.rebuild())


@torch.no_grad()
def beam_steps(model, features, mask, beam_size: int, max_len: int, min_len: int,
               length_penalty: float, stop_early: bool = True) -> BeamHistory:
    """beam_search's steps, what it keeps of them (the captions are rebuilt from it).

    stop_early False runs all max_len + 1 steps with no host sync (the CUDA graphs of
    models/decode_graphs.py). The captions are the same: once no live beam can beat a video's
    best ended hypothesis, the later steps can only end hypotheses that score less."""
    batch, device = features.shape[0], features.device
    width = beam_size
    clips = model.encode(features, mask, rows_per_clip=width)
    state = clips.state
    # One live beam per video at the start (W copies of it would only repeat it).
    live = 1
    live_scores = torch.zeros(batch, 1, device=device)
    words = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    best_score = torch.full((batch,), float("-inf"), device=device)
    history = BeamHistory(batch, device)
    if length_penalty:
        normalised = lambda scores, length: scores / float(length) ** length_penalty
    else:
        normalised = lambda scores, length: scores

    for step in range(max_len + 1):
        logits, state, alpha = model.step(words, state, clips, live)
        history.alphas.append(alpha)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        ends_allowed = may_end(step, min_len, max_len)
        if ends_allowed:   # before the in-place fill below overwrites the <eos> column
            eos_scores = (live_scores.view(-1) + log_probs[:, EOS_ID]).view(batch, live)
        if must_end(step, max_len):    # every beam ends with <eos>
            history.add_end(step, *eos_scores.max(1), normalised)
            break
        log_probs[:, NEVER_NEXT].fill_(float("-inf"))      # <eos> is ranked apart
        word_scores, word_ids = log_probs.topk(min(width, log_probs.shape[1]), dim=1)
        candidates = (live_scores.view(-1, 1) + word_scores).view(batch, -1)
        live_scores, picked = candidates.topk(min(width, candidates.shape[1]), dim=1)   # sorted
        if ends_allowed:
            end_raw, end_beam = eos_scores.max(1)
            if live_scores.shape[1] == width:
                # the best <eos> ranks among the W best unless W words beat it (it wins ties, as
                # greedy search's max picks the lowest id); the other <eos> rank below it
                end_raw = end_raw.masked_fill(end_raw < live_scores[:, -1], float("-inf"))
            end_score = history.add_end(step, end_raw, end_beam, normalised)
            if stop_early:
                best_score = torch.maximum(best_score, end_score)
        parent_rows = history.row_table(live, word_ids.shape[1]).gather(1, picked).view(-1)
        words = word_ids.view(batch, -1).gather(1, picked).view(-1)
        history.parents.append(parent_rows)
        history.words.append(words)
        state = tuple(s[parent_rows] for s in state)
        live = live_scores.shape[1]
        # Log-probs only fall, so a live beam can at best keep its score, normalised at the
        # length that flatters it most: the longest when the length penalty rewards length, the
        # next step's (ending there) when a negative one rewards brevity. Before any <eos> was
        # allowed, no video has ended: nothing to check, no host sync.
        best_length = max_len + 1 if length_penalty >= 0 else step + 2
        if (stop_early and ends_allowed
                and bool((best_score >= normalised(live_scores[:, 0], best_length)).all())):
            break
    return history
