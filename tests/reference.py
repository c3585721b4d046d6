"""References the tests hold the model's fast code to, written plainly and independently of it.

- reference_alpha: an attention's weights from its own frame_energy (models/attention.py), one
  frame at a time, softmax over the real frames;
- reference_step: the decoder step written plainly: nn.LSTMCell's own forward and the attention
  sum, one map at a time; the paper's equations written a second time;
- reference_beam_search: a plain beam search: every <eos> among the 2W candidates ranked with
  them, whole histories copied every step, the clips repeated for the beams. The benchmark
  (bench/eval_stages.py) also times it.
"""
from __future__ import annotations

import torch

from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID
from models.clips import EncodedClips
from models.decoded import Decoded


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
    """One decoder step as first written: model.step's signature, the model's own parameters."""
    decoder, attention = model.decoder, model.decoder.attention
    hidden, cell = state
    if attention.name == "soft":
        energy = attention.score(torch.tanh(clips.keys + attention.query(hidden).unsqueeze(1))).squeeze(-1)
        alpha = torch.softmax(energy.masked_fill(~clips.mask, float("-inf")), dim=-1)
    elif attention.name == "mean":
        alpha = clips.mask.to(clips.frames.dtype)
        alpha = alpha / alpha.sum(-1, keepdim=True).clamp(min=1)
    else:                                   # any other: its own formula, frame by frame
        alpha = reference_alpha(attention, hidden, clips)
    context = torch.bmm(alpha.unsqueeze(1), clips.frames).squeeze(1)
    if decoder.selector is not None:
        context = torch.sigmoid(decoder.selector(hidden)) * context
    embedded = decoder.embedding(previous_word)
    hidden, cell = decoder.lstm(torch.cat([embedded, context], dim=-1), (hidden, cell))
    dropped = decoder.dropout(hidden)
    if decoder.out_hidden is None:
        logits = decoder.readout(dropped)
    else:
        readout = torch.tanh(decoder.out_hidden(dropped) + embedded + decoder.out_context(context))
        logits = decoder.readout(decoder.dropout(readout))
    return logits, (hidden, cell), alpha


def repeated(clips, times: int) -> EncodedClips:
    """Each clip `times` times in a row, as the first beam search repeated them for its beams."""
    rep = lambda t: t.repeat_interleave(times, dim=0)
    return EncodedClips(rep(clips.frames), rep(clips.keys), rep(clips.mask),
                        tuple(rep(s) for s in clips.state))


# ---- models/decoding.py at d527d58 (beam search only), unchanged but for the step it calls ------
def _step_log_probs(model, words, state, clips, step: int, min_len: int, max_len: int):
    logits, state, alpha = reference_step(model, words, state, clips)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    log_probs[:, PAD_ID] = float("-inf")
    log_probs[:, BOS_ID] = float("-inf")
    if step < min_len:                 # too short to end
        log_probs[:, EOS_ID] = float("-inf")
    if step == max_len:                # max_len words said: only <eos> is left
        eos = log_probs[:, EOS_ID].clone()
        log_probs.fill_(float("-inf"))
        log_probs[:, EOS_ID] = eos
    return log_probs, state, alpha


@torch.no_grad()
def reference_beam_search(model, features, mask, beam_size: int = 5, max_len: int = 30, min_len: int = 1,
                length_penalty: float = 0.0) -> Decoded:
    """Best caption per video by sum of log-probs / length**length_penalty (length with <eos>).

    Each step ranks 2W candidates per video: at most W of them are <eos> (one per beam), so
    the W best that go on always fill the beam. An <eos> among the W best ends its hypothesis,
    which is set aside and compared with the best finished one so far. A video stops when no
    live beam can beat its best finished one.
    """
    batch, device = features.shape[0], features.device
    width = beam_size
    clips = repeated(model.encode(features, mask), width)
    state = clips.state
    n_frames = features.shape[1]
    words = torch.full((batch * width,), BOS_ID, dtype=torch.long, device=device)
    # Only the first beam is live at the start, or the W beams would be W copies of one.
    live_scores = torch.full((batch, width), float("-inf"), device=device)
    live_scores[:, 0] = 0.0
    live_tokens = torch.zeros(batch, width, 0, dtype=torch.long, device=device)
    live_alphas = torch.zeros(batch, width, 0, n_frames, device=device)
    best_score = torch.full((batch,), float("-inf"), device=device)
    best_raw = torch.full((batch,), float("-inf"), device=device)
    best_tokens = torch.full((batch, max_len + 1), PAD_ID, dtype=torch.long, device=device)
    best_alphas = torch.zeros(batch, max_len + 1, n_frames, device=device)
    best_length = torch.zeros(batch, dtype=torch.long, device=device)
    rows = torch.arange(batch, device=device).unsqueeze(1)
    normaliser = lambda length: float(length) ** length_penalty if length_penalty else 1.0

    for step in range(max_len + 1):
        log_probs, state, alpha = _step_log_probs(model, words, state, clips, step, min_len, max_len)
        vocab = log_probs.shape[-1]
        candidates = (live_scores.unsqueeze(-1) + log_probs.view(batch, width, vocab)).view(batch, -1)
        top_scores, top_index = candidates.topk(min(2 * width, candidates.shape[1]), dim=1)
        beam, word = top_index // vocab, top_index % vocab
        rank = torch.arange(top_scores.shape[1], device=device).expand_as(top_scores)
        is_eos = word == EOS_ID
        # An <eos> among the W best candidates ends a hypothesis (so width 1 is greedy search);
        # any <eos> never goes on as a live beam.
        ends = is_eos & torch.isfinite(top_scores) & (rank < width)

        # Hypotheses that end here: keep the best per video if it beats the best so far.
        length = step + 1
        end_scores = torch.where(ends, top_scores / normaliser(length), torch.full_like(top_scores, float("-inf")))
        end_best, end_pick = end_scores.max(1)
        better = end_best > best_score
        if bool(better.any()):
            src_beam = beam.gather(1, end_pick.unsqueeze(1)).squeeze(1)
            ended_tokens = torch.cat([live_tokens[rows.squeeze(1), src_beam],
                                      torch.full((batch, 1), EOS_ID, dtype=torch.long, device=device)], 1)
            ended_alphas = torch.cat([live_alphas[rows.squeeze(1), src_beam],
                                      alpha.view(batch, width, -1)[rows.squeeze(1), src_beam].unsqueeze(1)], 1)
            update = better.view(batch, 1)
            best_tokens[:, :length] = torch.where(update, ended_tokens, best_tokens[:, :length])
            best_alphas[:, :length] = torch.where(update.unsqueeze(-1), ended_alphas, best_alphas[:, :length])
            best_score = torch.where(better, end_best, best_score)
            best_raw = torch.where(better, top_scores.gather(1, end_pick.unsqueeze(1)).squeeze(1), best_raw)
            best_length = torch.where(better, torch.full_like(best_length, length), best_length)

        # The W best candidates that go on become the new beams (ended ones sort last).
        order = (rank + is_eos.long() * top_scores.shape[1]).argsort(dim=1)[:, :width]
        live_scores = top_scores.gather(1, order).masked_fill(is_eos.gather(1, order), float("-inf"))
        beam, word = beam.gather(1, order), word.gather(1, order)
        if step == max_len:
            break
        flat = (rows * width + beam).view(-1)
        state = tuple(s[flat] for s in state)
        live_tokens = torch.cat([live_tokens[rows, beam], word.unsqueeze(-1)], 2)
        live_alphas = torch.cat([live_alphas[rows, beam], alpha[flat].view(batch, width, 1, -1)], 2)
        words = word.view(-1)
        # Log-probs only fall, so a live beam can at best keep its score, divided by at most
        # the longest length's normaliser when a length penalty rewards length.
        bound = live_scores.max(1).values / normaliser(max_len + 1)
        if bool((best_score >= bound).all()):
            break

    return Decoded(best_tokens[:, :int(best_length.max())], best_raw,
                   best_alphas[:, :int(best_length.max())], best_length)
