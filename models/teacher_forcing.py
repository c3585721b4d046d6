"""Teacher-forced decoding for training: DecoderStep's equations (models/decoder.py) applied T
times, with the terms that do not depend on h_{t-1} taken out of the loop:
- the word part of the LSTM gates, W_y E[y_{t-1}] + b, for all steps at once;
- the deep output layer and the vocabulary projection, the largest product, once over all steps.
tests/test_fast_path.py checks it against the plain step loop (SALSTM.forward_stepwise).
scheduled_sampling, beyond the paper, feeds the model some of its own words instead.
"""
from __future__ import annotations

import torch

from loader.vocabulary import BOS_ID, PAD_ID
from models.sampling import draw


def teacher_forced(model, features, mask, inputs):
    """inputs (B, T) -> logits (B, T, V), attention (B, T, K); same result as the plain loop."""
    step = model.decoder
    clips = model.encode(features, mask)
    maps = step.maps()
    hidden, cell = clips.state
    embedded = step.embedding(inputs)                                        # (B, T, E)
    word_gates = step.word_gates(embedded, maps)                             # (B, T, 4H)
    hiddens, contexts, alphas = [], [], []
    # unbind, not word_gates[:, t]: one backward for all steps instead of a zero fill per step
    for step_word_gates in word_gates.unbind(1):
        hidden_gates, query, beta = step.read_hidden(hidden, maps)
        alpha = step.attention.weights(query, clips, 1)                      # (B, 1, K)
        context = step.context(alpha, beta, clips.frames)
        hidden, cell = step.lstm_update(step_word_gates, hidden_gates, step.context_gates(context, maps),
                                        cell)
        hiddens.append(hidden)
        contexts.append(context)
        alphas.append(alpha.squeeze(1))
    logits = step.output(torch.stack(hiddens, 1), embedded, step.output_context(torch.stack(contexts, 1)))
    return logits, torch.stack(alphas, 1)


def scheduled_sampling(model, features, mask, inputs, own_word_probability: float):
    """Teacher forcing where each step's input is, with the given probability, a word drawn from
    the model's own previous output instead of the reference word (Bengio et al. 2015).

    Each step needs the previous step's output, so this loop computes the output layer step by
    step (DecoderStep.forward) instead of once over all steps; it is used only while the
    probability is above 0. Draws use torch's global generator of the features' device."""
    step = model.decoder
    clips = model.encode(features, mask)
    maps = step.maps()
    state, logits, alphas = clips.state, [], []
    words = inputs[:, 0]
    for t in range(inputs.shape[1]):
        if t > 0:
            with torch.no_grad():
                own_logits = logits[-1].float().clone()
                own_logits[:, PAD_ID] = float("-inf")          # never fed as words (filled one by
                own_logits[:, BOS_ID] = float("-inf")          # one: a list index is a host copy)
                own = draw(torch.softmax(own_logits, dim=-1))
                use_own = torch.rand(own.shape, device=own.device) < own_word_probability
            words = torch.where(use_own & (inputs[:, t] != PAD_ID), own, inputs[:, t])
        step_logits, state, alpha = step(words, state, clips, maps)
        logits.append(step_logits)
        alphas.append(alpha)
    return torch.stack(logits, 1), torch.stack(alphas, 1)
