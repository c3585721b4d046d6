"""One step of the attention LSTM decoder, with the beta gate and the deep output layer."""
from __future__ import annotations

import torch
from torch import nn


class DecoderStep(nn.Module):
    def __init__(self, vocab_size: int, feature_size: int, config, attention: nn.Module):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)
        self.attention = attention
        # beta_t = sigma(w_beta . h_{t-1} + b_beta) scales the attended feature
        self.selector = nn.Linear(config.hidden_size, 1) if config.use_selector else None
        # The gates see E[y_{t-1}], h_{t-1} and phi_t (LSTMCell adds W_h h_{t-1} itself).
        self.lstm = nn.LSTMCell(config.embedding_size + feature_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        if config.deep_output:
            # p(y_t) = softmax(W_p tanh(W_o h_t + E[y_{t-1}] + W_phi phi_t + b_o) + b_p)
            self.out_hidden = nn.Linear(config.hidden_size, config.embedding_size)
            self.out_context = nn.Linear(feature_size, config.embedding_size, bias=False)
            self.readout = nn.Linear(config.embedding_size, vocab_size)
        else:
            self.out_hidden = self.out_context = None
            self.readout = nn.Linear(config.hidden_size, vocab_size)

    def forward(self, previous_word, state, keys, frames, mask):
        """previous_word (B,), state (h, c) -> logits (B, V), new state, alpha (B, K)."""
        hidden, cell = state
        context, alpha = self.attention(hidden, keys, frames, mask)
        if self.selector is not None:
            context = torch.sigmoid(self.selector(hidden)) * context
        embedded = self.embedding(previous_word)
        hidden, cell = self.lstm(torch.cat([embedded, context], dim=-1), (hidden, cell))
        return self.output(hidden, embedded, context), (hidden, cell), alpha

    def output(self, hidden, embedded, context):
        """Word logits from h_t, E[y_{t-1}] and phi_t, for one step or all steps at once.

        Dropout that really applies: on h_t and on the readout (nn.LSTM's dropout would not).
        """
        return self.output_from_projected(
            hidden, embedded, self.out_context(context) if self.out_context is not None else None)

    def output_from_projected(self, hidden, embedded, projected_context):
        """output() with W_phi phi_t already computed (beam search mixes it per clip)."""
        dropped = self.dropout(hidden)
        if self.out_hidden is None:
            return self.readout(dropped)
        readout = torch.tanh(self.out_hidden(dropped) + embedded + projected_context)
        return self.readout(self.dropout(readout))
