"""Caption generation, used by validation, testing and run.py alike: greedy and beam search.

Both are batched over videos (and beams) with tensor operations only: no Python loop over
videos or beams, no .item() per hypothesis. Beam search keeps finished hypotheses aside, so a
caption that has ended never occupies a beam slot, and scores are sums of log-probabilities.

Beam search is arranged for speed (bench/benchmark.py measures it against the plain version; the
results are the same up to float rounding, which can swap near-tied beams):
- The beams of a video share its clip: nothing per clip is copied per beam, and the maps that
  read the attended feature phi_t (the LSTM's input weights, W_phi of the deep output) are
  applied to the K frames once per clip, so that a step only mixes those projections with its
  attention weights instead of multiplying a (beams, D) feature by (D, 4H) weights.
- Only the start beam is computed at the first step, not W copies of it.
- Candidates come from the top W words of each beam other than <eos>, instead of a sum over
  beams x vocabulary; <eos> is ranked apart, one candidate per beam, of which only the best
  can matter.
- Few operators a step, since a GPU step is bound by launches (docs/speed.md counts them):
  impossible words masked with one in-place fill, a candidate's beam row and word read with
  one gather each from cached tables, only the best ended hypothesis of a step kept, no host
  sync before <eos> may come.
- Histories are kept as back-pointers and rebuilt once at the end, not copied every step
  (models/beam_history.py).
A model whose step was replaced on the instance (instrumented, as a test does) or that is not
a plain SALSTM is decoded through model.step with the same search. Greedy search steps
through DecoderStep.forward (weight views taken once per decode): with one row per clip,
projecting the frames once costs what it saves.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID
from models.beam_history import BeamHistory
from utils import autocast_bf16, tf32_products


@dataclass
class Decoded:
    tokens: torch.Tensor      # (B, L) word ids, <eos> then <pad> after the caption
    log_probs: torch.Tensor   # (B,) sum of the log-probabilities of the words and <eos>
    attention: torch.Tensor   # (B, L, K) attention weights of each generated token
    lengths: torch.Tensor     # (B,) tokens including <eos>


class _ModelStep:
    """model.step on (videos x beams) rows, with the clips repeated for the beams."""

    def __init__(self, model, clips):
        self.model, self.clips, self.repeated = model, clips, {1: clips}

    def __call__(self, words, state, width: int):
        if width not in self.repeated:
            self.repeated[width] = self.clips.repeat(width)
        logits, state, alpha = self.model.step(words, state, self.repeated[width])
        return logits, state, alpha


class SharedClipStep:
    """DecoderStep's equations for rows that are `width` rows of each clip (beams, samples), the
    clips not repeated.

    The maps that read phi_t = beta_t sum_i alpha_i v_i (its share of the LSTM gates, W_phi, and of
    the deep output, W_c) are applied to each clip's frames once: a step then mixes W v_i with its
    attention weights, where it would otherwise multiply a (rows, D) feature by (D, 4H) weights.
    """

    def __init__(self, model, clips):
        self.step, self.clips = model.decoder, clips
        self.maps = self.step.maps()
        self.projected = F.linear(clips.frames, self.step.context_maps(self.maps))   # (B, K, 4H [+ E])

    def __call__(self, words, state, width: int):
        step, maps = self.step, self.maps
        hidden, cell = state
        hidden_gates, query, beta = step.read_hidden(hidden, maps)
        alpha = step.attention.weights(query, self.clips, width)                # (B, W, K)
        gate_context, output_context = step.split_context_maps(step.context(alpha, beta, self.projected))
        embedded = step.embedding(words)
        hidden, cell = step.lstm_update(step.word_gates(embedded, maps), hidden_gates, gate_context, cell)
        logits = step.output(hidden, embedded, output_context)
        return logits, (hidden, cell), alpha.flatten(0, 1)


def is_plain(model) -> bool:
    """A SALSTM whose step is DecoderStep's own, not one replaced (instrumented, as a test does)."""
    from models.sa_lstm import SALSTM
    return isinstance(model, SALSTM) and "step" not in vars(model) and type(model).step is SALSTM.step


def decoder_step_for(model, clips):
    """SharedClipStep for a plain SALSTM; model.step on repeated clips for a model whose step was
    replaced or that is another kind of model."""
    return SharedClipStep(model, clips) if is_plain(model) else _ModelStep(model, clips)


def one_row_step_for(model):
    """model.step for one row per clip; for a plain SALSTM with the weight views taken once for
    the whole decode instead of once a step."""
    if not is_plain(model):
        return model.step
    maps = model.decoder.maps()
    return lambda words, state, clips: model.decoder(words, state, clips, maps)


# <pad>, <bos> and <eos>, the words beam search never continues with (<eos> is ranked apart), are
# ids 0-2 (loader/vocabulary.py): one slice names them, with no index tensor to copy to the device.
NEVER_NEXT = slice(0, 3)
assert sorted((PAD_ID, BOS_ID, EOS_ID)) == list(range(NEVER_NEXT.start, NEVER_NEXT.stop))


def mask_impossible_words(logits, step: int, min_len: int) -> None:
    """Words that may not come next, in place: <pad>, <bos>, and <eos> before min_len words."""
    logits[:, PAD_ID] = float("-inf")
    logits[:, BOS_ID] = float("-inf")
    if step < min_len:                 # too short to end
        logits[:, EOS_ID] = float("-inf")


def _step_log_probs(step_fn, words, state, clips, step: int, min_len: int, max_len: int):
    logits, state, alpha = step_fn(words, state, clips)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    mask_impossible_words(log_probs, step, min_len)
    if step == max_len:                # max_len words said: only <eos> is left
        eos = log_probs[:, EOS_ID].clone()
        log_probs.fill_(float("-inf"))
        log_probs[:, EOS_ID] = eos
    return log_probs, state, alpha


@torch.no_grad()
def greedy_search(model, features, mask, max_len: int = 30, min_len: int = 1,
                  stop_early: bool = True) -> Decoded:
    """The most likely word at each step. stop_early False runs all max_len + 1 steps with no
    host sync (the CUDA graphs of models/decode_graphs.py): the same captions, tokens and
    attention padded to max_len + 1 positions."""
    clips = model.encode(features, mask)
    step_fn = one_row_step_for(model)
    batch = features.shape[0]
    words = torch.full((batch,), BOS_ID, dtype=torch.long, device=features.device)
    state = clips.state
    done = torch.zeros(batch, dtype=torch.bool, device=features.device)
    scores = torch.zeros(batch, device=features.device)
    tokens, alphas = [], []
    for step in range(max_len + 1):
        log_probs, state, alpha = _step_log_probs(step_fn, words, state, clips, step, min_len, max_len)
        best, words = log_probs.max(-1)
        words = words.masked_fill(done, PAD_ID)
        scores = scores + best.masked_fill(done, 0.0)
        tokens.append(words)
        alphas.append(alpha.masked_fill(done.unsqueeze(-1), 0.0))
        done = done | (words == EOS_ID)
        if stop_early and bool(done.all()):
            break
    tokens = torch.stack(tokens, 1)
    lengths = ((tokens != PAD_ID).sum(1))
    return Decoded(tokens, scores, torch.stack(alphas, 1), lengths)


@torch.no_grad()
def beam_search(model, features, mask, beam_size: int = 5, max_len: int = 30, min_len: int = 1,
                length_penalty: float = 0.0) -> Decoded:
    """Best caption per video by sum of log-probs / length**length_penalty (length with <eos>).

    Each step the W best candidates that are not <eos> go on as the beams; the best <eos>
    candidate ends a hypothesis when it ranks among the W best of all candidates (so width 1 is
    greedy search), and an ended hypothesis never goes on. A video stops when no live beam can
    beat its best ended one. Written to dispatch few operators a step (docs/speed.md counts
    them): a GPU step here is bound by launches, not arithmetic.
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
    clips = model.encode(features, mask)
    step_fn = decoder_step_for(model, clips)
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
        logits, state, alpha = step_fn(words, state, live)
        history.alphas.append(alpha)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        ends_allowed = step >= min_len or step == max_len
        if ends_allowed:   # before the in-place fill below overwrites the <eos> column
            eos_scores = (live_scores.view(-1) + log_probs[:, EOS_ID]).view(batch, live)
        if step == max_len:            # max_len words said: every beam ends with <eos>
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


def decode(model, features, mask, eval_config) -> Decoded:
    """Beam search with the evaluation settings; width 1 is greedy search.

    eval.autocast_bf16 runs the model's products in bfloat16; scores are still summed in float32.
    eval.tf32, on CUDA: its float32 products on TF32 tensor cores.
    eval.cuda_graphs, on CUDA: each batch shape's decode replayed as a CUDA graph
    (models/decode_graphs.py), the same captions; elsewhere it changes nothing.
    """
    graphed = eval_config.cuda_graphs and features.is_cuda
    with (tf32_products(eval_config.tf32),
          autocast_bf16(features.device.type, eval_config.autocast_bf16, cache=not graphed)):
        if graphed:
            from models.decode_graphs import graphed_decode
            return graphed_decode(model, features, mask, eval_config)
        return search(model, features, mask, eval_config)


def search(model, features, mask, eval_config, stop_early: bool = True):
    """The search eval_config names, run eagerly: beam search, or greedy search for width 1.
    stop_early False: every step, no host sync; for beam search, its history (see beam_steps)."""
    e = eval_config
    if e.beam_size <= 1:
        return greedy_search(model, features, mask, e.max_len, e.min_len, stop_early)
    if stop_early:
        return beam_search(model, features, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty)
    return beam_steps(model, features, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty,
                      stop_early=False)
