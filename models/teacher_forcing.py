"""Teacher-forced decoding for training: DecoderStep's equations (models/decoder.py) applied T
times, with the terms that do not depend on h_{t-1} taken out of the loop:
- the word part of the LSTM gates, W_y E[y_{t-1}] + b, for all steps at once;
- the deep output layer and the vocabulary projection, the largest product, once over all steps.
step_loop is the plain loop over the model's step, which tests/test_fast_path.py checks the
fast path against; with scheduled sampling (beyond the paper) it feeds the model some of its own
words instead of the reference's.
"""
from __future__ import annotations

import torch

from loader.vocabulary import BOS_ID, PAD_ID
from models.sampling import draw


def teacher_forced(model, features, mask, inputs):
    """inputs (B, T) -> logits (B, T, V), attention (B, T, K); same result as the plain loop."""
    step = model.decoder
    clips = model.encode(features, mask)
    maps = clips.cached("maps", step.maps)
    hidden, cell = clips.state
    embedded = step.embedding(inputs)                                        # (B, T, E)
    word_gates = step.word_gates(embedded, maps)                             # (B, T, 4H)
    hiddens, contexts, alphas = [], [], []
    # unbind, not word_gates[:, t]: one backward for all steps instead of a zero fill per step
    for step_word_gates in word_gates.unbind(1):
        hidden_gates, query, beta = step.read_hidden(hidden, maps)
        alpha = step.attention.weights(hidden, clips, 1, query)              # (B, 1, K)
        context = step.context(alpha, beta, clips.frames)
        hidden, cell = step.lstm_update(step_word_gates, hidden_gates, step.context_gates(context, maps),
                                        cell)
        hiddens.append(hidden)
        contexts.append(context)
        alphas.append(alpha.squeeze(1))
    logits = step.output(torch.stack(hiddens, 1), embedded, step.output_context(torch.stack(contexts, 1)))
    return logits, torch.stack(alphas, 1)


def step_loop(model, features, mask, inputs, own_word_probability: float = 0.0):
    """The plain loop over model.step: inputs (B, T) -> logits (B, T, V), attention (B, T, K).

    own_word_probability > 0: scheduled sampling (Bengio et al. 2015), each step's input is, with
    that probability, a word drawn from the model's own previous output instead of the reference
    word. Draws use torch's global generator of the features' device."""
    clips = model.encode(features, mask)
    state, logits, alphas = clips.state, [], []
    words = inputs[:, 0]
    for t in range(inputs.shape[1]):
        if t > 0 and own_word_probability > 0:
            with torch.no_grad():
                own_logits = logits[-1].float().clone()
                own_logits[:, PAD_ID] = float("-inf")          # never fed as words (filled one by
                own_logits[:, BOS_ID] = float("-inf")          # one: a list index is a host copy)
                own = draw(torch.softmax(own_logits, dim=-1))
                use_own = torch.rand(own.shape, device=own.device) < own_word_probability
            words = torch.where(use_own & (inputs[:, t] != PAD_ID), own, inputs[:, t])
        elif t > 0:
            words = inputs[:, t]
        step_logits, state, alpha = model.step(words, state, clips)
        logits.append(step_logits)
        alphas.append(alpha)
    return torch.stack(logits, 1), torch.stack(alphas, 1)
