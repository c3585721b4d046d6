"""Teacher-forced decoding for training, with the step-independent work taken out of the loop.

The same equations as DecoderStep applied T times, rearranged for speed:
- the word-embedding part of the LSTM gates, E[y_{t-1}] W_ih^emb + b, for all steps at once;
- everything that reads h_{t-1} (LSTM gates W_hh, attention query W_a, beta gate w_beta) in one
  matrix product per step;
- the deep output layer and the vocabulary projection, the largest product, once over all steps.
tests/test_fast_path.py checks it against the plain step-by-step loop.
"""
from __future__ import annotations

import torch


def _fused_hidden_weights(step) -> tuple:
    """Rows of [W_hh; W_a; w_beta] and their biases, so one product serves all three."""
    weights = [step.lstm.weight_hh]
    biases = [step.lstm.bias_hh]
    attention_query = getattr(step.attention, "query", None)
    if attention_query is not None:
        weights.append(attention_query.weight)
        biases.append(torch.zeros_like(attention_query.weight[:, 0]))
    if step.selector is not None:
        weights.append(step.selector.weight)
        biases.append(step.selector.bias)
    return torch.cat(weights), torch.cat(biases)


def teacher_forced(model, features, mask, inputs):
    """inputs (B, T) -> logits (B, T, V), attention (B, T, K); same result as the plain loop."""
    step = model.decoder
    clips = model.encode(features, mask)
    hidden, cell = clips.state
    size = hidden.shape[-1]
    embedded = step.embedding(inputs)                                        # (B, T, E)
    n_embed = embedded.shape[-1]
    word_gates = torch.nn.functional.linear(embedded, step.lstm.weight_ih[:, :n_embed], step.lstm.bias_ih)
    context_weight = step.lstm.weight_ih[:, n_embed:]
    hidden_weight, hidden_bias = _fused_hidden_weights(step)
    attention = step.attention
    has_query = getattr(attention, "query", None) is not None
    hiddens, contexts, alphas = [], [], []
    for t in range(inputs.shape[1]):
        projected = torch.nn.functional.linear(hidden, hidden_weight, hidden_bias)
        hidden_gates = projected[:, :4 * size]
        if has_query:
            query = projected[:, 4 * size:4 * size + attention.query.out_features]
            energy = attention.score(torch.tanh(clips.keys + query.unsqueeze(1))).squeeze(-1)
            alpha = torch.softmax(energy.masked_fill(~clips.mask, float("-inf")), dim=-1)
        else:
            alpha = clips.mask.to(hidden.dtype)
            alpha = alpha / alpha.sum(-1, keepdim=True).clamp(min=1)
        context = torch.bmm(alpha.unsqueeze(1), clips.frames).squeeze(1)
        if step.selector is not None:
            context = torch.sigmoid(projected[:, -1:]) * context
        gates = word_gates[:, t] + hidden_gates + torch.nn.functional.linear(context, context_weight)
        in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=-1)   # LSTMCell's order
        cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
        hidden = torch.sigmoid(out_gate) * torch.tanh(cell)
        hiddens.append(hidden)
        contexts.append(context)
        alphas.append(alpha)
    logits = step.output(torch.stack(hiddens, 1), embedded, torch.stack(contexts, 1))
    return logits, torch.stack(alphas, 1)
