"""Teacher-forced decoding for training, with the step-independent work taken out of the loop.

The equations of DecoderStep applied T times, in FusedStep's form (models/fused_step.py), with:
- the word-embedding part of the LSTM gates, E[y_{t-1}] W_ih^emb + b, for all steps at once;
- the deep output layer and the vocabulary projection, the largest product, once over all steps.
tests/test_fast_path.py checks it against the plain step-by-step loop.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.fused_step import FusedStep


def teacher_forced(model, features, mask, inputs):
    """inputs (B, T) -> logits (B, T, V), attention (B, T, K); same result as the plain loop."""
    step = model.decoder
    clips = model.encode(features, mask)
    fused = FusedStep(step, clips)
    hidden, cell = clips.state
    embedded = step.embedding(inputs)                                        # (B, T, E)
    word_gates = fused.word_gates(embedded)                                  # (B, T, 4H)
    hiddens, contexts, alphas = [], [], []
    # unbind, not word_gates[:, t]: one backward for all steps instead of a zero fill per step
    for step_word_gates in word_gates.unbind(1):
        hidden_gates, query, beta = fused.read_hidden(hidden)
        alpha = fused.attention_weights(query, width=1)               # (B, 1, K)
        context = fused.gated(beta, torch.bmm(alpha, clips.frames).squeeze(1))
        gates = step_word_gates + hidden_gates + F.linear(context, fused.context_weight)
        hidden, cell = fused.lstm(gates, cell)
        hiddens.append(hidden)
        contexts.append(context)
        alphas.append(alpha.squeeze(1))
    logits = step.output(torch.stack(hiddens, 1), embedded, torch.stack(contexts, 1))
    return logits, torch.stack(alphas, 1)
