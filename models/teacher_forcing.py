"""Teacher-forced decoding for training: DecoderStep's equations (models/decoder.py) applied T
times, with the terms that do not depend on h_{t-1} taken out of the loop:
- the word part of the LSTM gates, W_y E[y_{t-1}] + b, for all steps at once;
- the deep output layer and the vocabulary projection, the largest product, once over all steps.
tests/test_fast_path.py checks it against the plain step loop (SALSTM.forward_stepwise).
"""
from __future__ import annotations

import torch


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
        hidden, cell = step.lstm_update(
            step_word_gates + hidden_gates + step.context_gates(context, maps), cell)
        hiddens.append(hidden)
        contexts.append(context)
        alphas.append(alpha.squeeze(1))
    logits = step.output(torch.stack(hiddens, 1), embedded, step.output_context(torch.stack(contexts, 1)))
    return logits, torch.stack(alphas, 1)
