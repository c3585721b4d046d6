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
- Candidates come from the top 2W words of each beam, with the log-softmax normaliser taken
  aside (logsumexp), instead of a log-softmax and a sum over beams x vocabulary.
- Histories are kept as back-pointers and rebuilt once at the end, not copied every step.
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
from utils import autocast_bf16


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


def _is_plain(model) -> bool:
    """A SALSTM whose step is DecoderStep's own, not one replaced (instrumented, as a test does)."""
    from models.sa_lstm import SALSTM
    return isinstance(model, SALSTM) and "step" not in vars(model) and type(model).step is SALSTM.step


def decoder_step_for(model, clips):
    """SharedClipStep for a plain SALSTM; model.step on repeated clips for a model whose step was
    replaced or that is another kind of model."""
    return SharedClipStep(model, clips) if _is_plain(model) else _ModelStep(model, clips)


def one_row_step_for(model):
    """model.step for one row per clip; for a plain SALSTM with the weight views taken once for
    the whole decode instead of once a step."""
    if not _is_plain(model):
        return model.step
    maps = model.decoder.maps()
    return lambda words, state, clips: model.decoder(words, state, clips, maps)


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
def greedy_search(model, features, mask, max_len: int = 30, min_len: int = 1) -> Decoded:
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
        if bool(done.all()):
            break
    tokens = torch.stack(tokens, 1)
    lengths = ((tokens != PAD_ID).sum(1))
    return Decoded(tokens, scores, torch.stack(alphas, 1), lengths)


@torch.no_grad()
def beam_search(model, features, mask, beam_size: int = 5, max_len: int = 30, min_len: int = 1,
                length_penalty: float = 0.0) -> Decoded:
    """Best caption per video by sum of log-probs / length**length_penalty (length with <eos>).

    Each step ranks 2W candidates per video: at most W of them are <eos> (one per beam), so
    the W best that go on always fill the beam. An <eos> among the W best ends its hypothesis,
    which is set aside and compared with the best finished one so far. A video stops when no
    live beam can beat its best finished one.
    """
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
    best_raw = torch.full((batch,), float("-inf"), device=device)
    end_step = torch.full((batch,), -1, dtype=torch.long, device=device)   # <eos> position
    end_beam = torch.zeros(batch, dtype=torch.long, device=device)         # beam it ended from
    parents, history_words, history_alphas = [], [], []                    # per step
    rows = torch.arange(batch, device=device).unsqueeze(1)
    if length_penalty:
        normalised = lambda scores, length: scores / float(length) ** length_penalty
    else:
        normalised = lambda scores, length: scores
    ranks = {}

    for step in range(max_len + 1):
        logits, state, alpha = step_fn(words, state, live)
        history_alphas.append(alpha.view(batch, live, -1))
        logits = logits.float()
        log_normaliser = torch.logsumexp(logits, dim=-1, keepdim=True)     # (rows, 1)
        if step == max_len:            # max_len words said: only <eos> is left
            word_logits = logits[:, EOS_ID:EOS_ID + 1]
            word_ids = torch.full_like(word_logits, EOS_ID, dtype=torch.long)
        else:
            mask_impossible_words(logits, step, min_len)
            word_logits, word_ids = logits.topk(min(2 * width, logits.shape[1]), dim=1)
        per_beam = word_ids.shape[1]
        candidates = (live_scores.view(-1, 1) + (word_logits - log_normaliser)).view(batch, -1)
        top_scores, top_index = candidates.topk(min(2 * width, candidates.shape[1]), dim=1)
        beam = top_index // per_beam
        word = word_ids.view(batch, -1).gather(1, top_index)
        n_top = top_scores.shape[1]
        if n_top not in ranks:
            ranks[n_top] = torch.arange(n_top, device=device).expand(batch, n_top)
        rank = ranks[n_top]
        is_eos = word == EOS_ID
        # An <eos> among the W best candidates ends a hypothesis (so width 1 is greedy search);
        # any <eos> never goes on as a live beam.
        ends = is_eos & torch.isfinite(top_scores) & (rank < width)

        # Hypotheses that end here: keep the best per video if it beats the best so far.
        end_scores = torch.where(ends, normalised(top_scores, step + 1),
                                 torch.full_like(top_scores, float("-inf")))
        end_best, end_pick = end_scores.max(1)
        better = end_best > best_score
        best_score = torch.where(better, end_best, best_score)
        best_raw = torch.where(better, top_scores.gather(1, end_pick.unsqueeze(1)).squeeze(1), best_raw)
        end_step = torch.where(better, torch.full_like(end_step, step), end_step)
        end_beam = torch.where(better, beam.gather(1, end_pick.unsqueeze(1)).squeeze(1), end_beam)
        if step == max_len:
            break

        # The W best candidates that go on become the new beams (ended ones sort last).
        order = (rank + is_eos.long() * n_top).argsort(dim=1)[:, :width]
        live_scores = top_scores.gather(1, order).masked_fill(is_eos.gather(1, order), float("-inf"))
        beam, word = beam.gather(1, order), word.gather(1, order)
        parents.append(beam)
        history_words.append(word)
        flat = (rows * live + beam).view(-1)
        state = tuple(s[flat] for s in state)
        live = beam.shape[1]
        words = word.view(-1)
        # Log-probs only fall, so a live beam can at best keep its score, divided by at most
        # the longest length's normaliser when a length penalty rewards length.
        bound = normalised(live_scores.max(1).values, max_len + 1)
        if bool((best_score >= bound).all()):
            break

    return _rebuild(end_step, end_beam, best_raw, parents, history_words, history_alphas)


def _rebuild(end_step, end_beam, scores, parents, history_words, history_alphas) -> Decoded:
    """Each video's best hypothesis, from its last beam back through the back-pointers.

    The hypothesis that ended at step t from beam j holds the words of the live beams it came
    from at steps 0..t-1, then <eos>; its attention is that of those beams' steps 0..t.
    """
    batch, device = end_step.shape[0], end_step.device
    length = int(end_step.max()) + 1
    n_frames = history_alphas[0].shape[-1]
    rows = torch.arange(batch, device=device)
    tokens = torch.full((batch, max(length, 0)), PAD_ID, dtype=torch.long, device=device)
    attention = torch.zeros(batch, max(length, 0), n_frames, device=device)
    beam = end_beam.clone()                       # the beam that was fed at position t
    for t in range(length - 1, -1, -1):
        covered = end_step >= t
        beam = torch.where(end_step == t, end_beam, beam)
        beam = torch.where(covered, beam, torch.zeros_like(beam)).clamp(max=history_alphas[t].shape[1] - 1)
        attention[:, t] = history_alphas[t][rows, beam] * covered.unsqueeze(1)
        if t > 0:
            tokens[:, t - 1] = torch.where(covered, history_words[t - 1][rows, beam], tokens[:, t - 1])
            beam = parents[t - 1][rows, beam]
    tokens[rows[end_step >= 0], end_step[end_step >= 0]] = EOS_ID
    return Decoded(tokens, scores, attention, end_step + 1)


def decode(model, features, mask, eval_config) -> Decoded:
    """Beam search with the evaluation settings; width 1 is greedy search.

    eval.autocast_bf16 runs the model's products in bfloat16; scores are still summed in float32.
    """
    with autocast_bf16(features.device.type, eval_config.autocast_bf16):
        if eval_config.beam_size <= 1:
            return greedy_search(model, features, mask, eval_config.max_len, eval_config.min_len)
        return beam_search(model, features, mask, eval_config.beam_size, eval_config.max_len,
                           eval_config.min_len, eval_config.length_penalty)
