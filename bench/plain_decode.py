"""The plain decode the benchmark's speed-ups are ratios against and the tests hold the model to
(tests/reference.py): the step and a beam search written plainly, each attention's weights frame by frame."""
from __future__ import annotations

import torch

from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID
from models.sa_lstm import EncodedClips
from models.searches import Decoded


def plain_alpha(attention, hidden, clips) -> torch.Tensor:
    """(B, K): the paper's attention and mean pooling written plainly; any other its own weights."""
    if attention.name == "soft":
        energy = attention.score(torch.tanh(clips.keys + attention.query(hidden).unsqueeze(1))).squeeze(-1)
        return torch.softmax(energy.masked_fill(~clips.mask, float("-inf")), dim=-1)
    if attention.name == "mean":
        alpha = clips.mask.to(clips.frames.dtype)
        return alpha / alpha.sum(-1, keepdim=True).clamp(min=1)
    return attention.weights(hidden, clips, 1).squeeze(1)


def plain_step(model, previous_word, state, clips, alpha_of=plain_alpha):
    """model.step with nn.LSTMCell's own forward, one map at a time; alpha_of(attention, hidden, clips) -> (B, K)."""
    decoder, attention = model.decoder, model.decoder.attention
    hidden, cell = state
    alpha = alpha_of(attention, hidden, clips)
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
    """Each clip `times` times in a row, one copy per beam."""
    rep = lambda t: t.repeat_interleave(times, dim=0)
    return EncodedClips(rep(clips.frames), rep(clips.keys), rep(clips.mask), tuple(rep(s) for s in clips.state))


@torch.no_grad()
def plain_beam_search(model, features, mask, beam_size: int = 5, max_len: int = 30, min_len: int = 1,
                      length_penalty: float = 0.0, step_fn=plain_step) -> Decoded:
    """Best caption per video by sum of log-probs / length**length_penalty (length with <eos>). Each
    step ranks 2W candidates, at most W of them <eos>, so the W best that go on fill the beam; an <eos>
    among the W best ends its hypothesis. A video stops when no live beam can beat its best ended one."""
    batch, device, width, n_frames = features.shape[0], features.device, beam_size, features.shape[1]
    clips = repeated(model.encode(features, mask), width)
    state = clips.state
    words = torch.full((batch * width,), BOS_ID, dtype=torch.long, device=device)
    live_scores = torch.full((batch, width), float("-inf"), device=device)
    live_scores[:, 0] = 0.0                  # one live beam at first, or the W beams would be copies of one
    live_tokens = torch.zeros(batch, width, 0, dtype=torch.long, device=device)
    live_alphas = torch.zeros(batch, width, 0, n_frames, device=device)
    best_score = best_raw = torch.full((batch,), float("-inf"), device=device)   # torch.where makes new ones
    best_tokens = torch.full((batch, max_len + 1), PAD_ID, dtype=torch.long, device=device)
    best_alphas = torch.zeros(batch, max_len + 1, n_frames, device=device)
    best_length = torch.zeros(batch, dtype=torch.long, device=device)
    rows = torch.arange(batch, device=device).unsqueeze(1)
    normaliser = lambda length: float(length) ** length_penalty if length_penalty else 1.0

    for step in range(max_len + 1):
        logits, state, alpha = step_fn(model, words, state, clips)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        log_probs[:, PAD_ID] = log_probs[:, BOS_ID] = float("-inf")
        if step < min_len:
            log_probs[:, EOS_ID] = float("-inf")
        vocab = log_probs.shape[-1]
        if step == max_len:                # max_len words said: only <eos> is left
            log_probs[:, torch.arange(vocab, device=device) != EOS_ID] = float("-inf")
        candidates = (live_scores.unsqueeze(-1) + log_probs.view(batch, width, vocab)).view(batch, -1)
        top_scores, top_index = candidates.topk(min(2 * width, candidates.shape[1]), dim=1)
        beam, word = top_index // vocab, top_index % vocab
        rank = torch.arange(top_scores.shape[1], device=device).expand_as(top_scores)
        is_eos = word == EOS_ID
        ends = is_eos & torch.isfinite(top_scores) & (rank < width)    # so width 1 is greedy search
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
            best_tokens[:, :length] = torch.where(better.view(batch, 1), ended_tokens, best_tokens[:, :length])
            best_alphas[:, :length] = torch.where(better.view(batch, 1, 1), ended_alphas, best_alphas[:, :length])
            best_score = torch.where(better, end_best, best_score)
            best_raw = torch.where(better, top_scores.gather(1, end_pick.unsqueeze(1)).squeeze(1), best_raw)
            best_length = torch.where(better, torch.full_like(best_length, length), best_length)
        # the W best candidates that go on become the new beams (ended ones sort last)
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
        # log-probs only fall: a live beam at best keeps its score, over the longest length's normaliser
        if bool((best_score >= live_scores.max(1).values / normaliser(max_len + 1)).all()):
            break
    return Decoded(best_tokens[:, :int(best_length.max())], best_raw,
                   best_alphas[:, :int(best_length.max())], best_length)
