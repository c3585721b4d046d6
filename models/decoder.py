"""One step of the SA-LSTM decoder, written once, equation by equation.

Yao et al. 2015 and the authors' code (README: the model's switches), at step t, from the previous
word y_{t-1}, the state (h_{t-1}, c_{t-1}) and a clip's frames v_1..v_K:

  attention  e_i = w^T tanh(W_a h_{t-1} + U_a v_i + b_a); alpha = softmax over the real frames
             (model.attention picks it by name, models/attention.py: soft is this one, mean
             gives every real frame the same weight, general is Luong's h_{t-1}^T W v_i)
  context    phi_t = beta_t sum_i alpha_i v_i,  beta_t = sigma(w_beta h_{t-1} + b_beta)
  LSTM       [i f g o] = W_y E[y_{t-1}] + W_h h_{t-1} + W_phi phi_t + b
             c_t = sigma(f) c_{t-1} + sigma(i) tanh(g),  h_t = sigma(o) tanh(c_t)
  output     p(y_t) = softmax(W_p tanh(W_o h_t + E[y_{t-1}] + W_c phi_t + b_o) + b_p)

Each line is one method of DecoderStep. The parameters keep nn.LSTMCell's layout and names
(weight_ih = [W_y | W_phi], weight_hh = W_h), so every checkpoint loads. StepMaps takes the views
of the weights once per decoded batch; everything that reads h_{t-1} (W_h, w_beta, and the
attention's query map when it offers one) is applied as one matrix product.

Two arrangements use these methods for speed and never rewrite them:
- DecoderStep.forward, the model's one step: one row per clip, or `width` rows per clip (beams,
  samples) whose clips were encoded for several rows: then the maps that read phi_t (W_phi, W_c)
  are applied to the K frames once per clip, which the attention sum commutes with;
- models/teacher_forcing.py: training; the terms that do not depend on h_{t-1} (word gates,
  output layer) computed for all T steps at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class StepMaps:
    """The weights as the equations use them, taken once per decoded batch (views and
    concatenations of the parameters: gradients reach them)."""
    hidden_weight: torch.Tensor   # [W_h; query map; w_beta] stacked: everything that reads h_{t-1}
    hidden_bias: torch.Tensor
    hidden_parts: list            # rows of each: [4H, A, 1], absent ones left out
    has_query: bool               # whether the attention's query map is among them
    word_weight: torch.Tensor     # W_y, E[y_{t-1}]'s share of the gates
    context_weight: torch.Tensor  # W_phi, phi_t's share of the gates


class DecoderStep(nn.Module):
    def __init__(self, vocab_size: int, feature_size: int, config, attention: nn.Module):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)            # E
        self.attention = attention
        self.selector = nn.Linear(config.hidden_size, 1) if config.use_selector else None  # w_beta, b_beta
        # weight_ih = [W_y | W_phi], weight_hh = W_h, b = bias_ih + bias_hh (nn.LSTMCell's layout;
        # its forward is never called: lstm_update below is the update).
        self.lstm = nn.LSTMCell(config.embedding_size + feature_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        if config.deep_output:
            self.out_hidden = nn.Linear(config.hidden_size, config.embedding_size)           # W_o, b_o
            self.out_context = nn.Linear(feature_size, config.embedding_size, bias=False)  # W_c
            self.readout = nn.Linear(config.embedding_size, vocab_size)                    # W_p, b_p
        else:
            self.out_hidden = self.out_context = None
            self.readout = nn.Linear(config.hidden_size, vocab_size)
        self.hidden_size = config.hidden_size
        self.fused_cell = config.fused_cell

    # ---- the equations -------------------------------------------------------------------
    def maps(self) -> StepMaps:
        """The weights' views and stacks, once per decoded batch (not once per step)."""
        weights, biases = [self.lstm.weight_hh], [self.lstm.bias_hh]
        query = self.attention.query_map()
        if query is not None:
            weights.append(query.weight)
            biases.append(torch.zeros_like(query.weight[:, 0]))
        if self.selector is not None:
            weights.append(self.selector.weight)
            biases.append(self.selector.bias)
        # split, not slices: its backward writes each part's gradient once, where every
        # slice's backward would fill a zero tensor of the whole weight.
        word_weight, context_weight = self.lstm.weight_ih.split(
            [self.embedding.embedding_dim, self.lstm.input_size - self.embedding.embedding_dim], dim=1)
        return StepMaps(torch.cat(weights), torch.cat(biases), [w.shape[0] for w in weights],
                        query is not None, word_weight, context_weight)

    def read_hidden(self, hidden: torch.Tensor, maps: StepMaps) -> tuple:
        """h_{t-1} -> (W_h h_{t-1} + bias_hh, the attention's query or None, beta logit or None)."""
        parts = iter(F.linear(hidden, maps.hidden_weight, maps.hidden_bias).split(maps.hidden_parts, dim=-1))
        gates = next(parts)
        query = next(parts) if maps.has_query else None
        beta = next(parts) if self.selector is not None else None
        return gates, query, beta

    @staticmethod
    def context(alpha: torch.Tensor, beta, frames: torch.Tensor) -> torch.Tensor:
        """phi_t = beta_t sum_i alpha_i v_i: alpha (B, W, K) over frames (B, K, F) -> (B*W, F).

        frames may be any linear map of the v_i (forward passes W v_i: the sum commutes)."""
        attended = torch.bmm(alpha, frames).flatten(0, 1)
        return attended if beta is None else torch.sigmoid(beta) * attended

    def word_gates(self, embedded: torch.Tensor, maps: StepMaps) -> torch.Tensor:
        """W_y E[y_{t-1}] + bias_ih, for any leading shape."""
        return F.linear(embedded, maps.word_weight, self.lstm.bias_ih)

    @staticmethod
    def context_gates(context: torch.Tensor, maps: StepMaps) -> torch.Tensor:
        """W_phi phi_t."""
        return F.linear(context, maps.context_weight)

    def lstm_update(self, word_gates: torch.Tensor, hidden_gates: torch.Tensor, context_gates: torch.Tensor,
                    cell: torch.Tensor) -> tuple:
        """(h_t, c_t) from the gates' three inputs, W_y E[y_{t-1}] + b_ih, W_h h_{t-1} + b_hh and
        W_phi phi_t, in nn.LSTMCell's order: i, f, g, o."""
        if self.fused_cell and cell.is_cuda and word_gates.dtype == hidden_gates.dtype == cell.dtype:
            # nn.LSTMCell's own CUDA kernel: the sum and the update in one launch, one for backward
            # (tests/test_decoder_step.py checks it against the lines below on a GPU)
            hidden, cell, _ = torch.ops.aten._thnn_fused_lstm_cell(word_gates + context_gates,
                                                                   hidden_gates, cell)
            return hidden, cell
        gates = word_gates + hidden_gates + context_gates
        in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=-1)
        cell = torch.addcmul(forget_gate.sigmoid() * cell, in_gate.sigmoid(), cell_gate.tanh())
        return out_gate.sigmoid() * torch.tanh(cell), cell

    def output_context(self, context: torch.Tensor):
        """W_c phi_t, the attended feature's share of the deep output (None without it)."""
        return self.out_context(context) if self.out_context is not None else None

    def output(self, hidden: torch.Tensor, embedded: torch.Tensor, output_context) -> torch.Tensor:
        """Word logits W_p tanh(W_o h_t + E[y_{t-1}] + W_c phi_t + b_o) + b_p, for one step or all.

        Dropout that really applies: on h_t and on the readout (nn.LSTM's dropout would not)."""
        dropped = self.dropout(hidden)
        if self.out_hidden is None:
            return self.readout(dropped)
        readout = torch.tanh(self.out_hidden(dropped) + embedded + output_context)
        return self.readout(self.dropout(readout))

    # ---- phi's maps applied to the frames once per clip (several rows per clip) ------------
    def context_maps(self, maps: StepMaps) -> torch.Tensor:
        """[W_phi; W_c]: every map that reads phi_t, stacked."""
        if self.out_context is None:
            return maps.context_weight
        return torch.cat([maps.context_weight, self.out_context.weight])

    def split_context_maps(self, mapped: torch.Tensor) -> tuple:
        """[W_phi phi; W_c phi] -> (W_phi phi, W_c phi or None)."""
        if self.out_context is None:
            return mapped, None
        return tuple(mapped.split([4 * self.hidden_size, self.out_context.out_features], dim=-1))

    # ---- the step ---------------------------------------------------------------------------
    def forward(self, previous_word, state, clips, width: int = 1):
        """previous_word (B*W,), state (h, c) of B*W rows, `width` consecutive rows per clip ->
        logits (B*W, V), new state, alpha (B*W, K). Weight views are taken once per clips."""
        maps = clips.cached("maps", self.maps)
        hidden, cell = state
        hidden_gates, query, beta = self.read_hidden(hidden, maps)
        alpha = self.attention.weights(hidden, clips, width, query)           # (B, W, K)
        if clips.rows_per_clip == 1:
            context = self.context(alpha, beta, clips.frames)
            gate_context, output_context = self.context_gates(context, maps), self.output_context(context)
        else:
            projected = clips.cached("projected", lambda: F.linear(clips.frames, self.context_maps(maps)))
            gate_context, output_context = self.split_context_maps(self.context(alpha, beta, projected))
        embedded = self.embedding(previous_word)
        hidden, cell = self.lstm_update(self.word_gates(embedded, maps), hidden_gates, gate_context, cell)
        logits = self.output(hidden, embedded, output_context)
        return logits, (hidden, cell), alpha.flatten(0, 1)
