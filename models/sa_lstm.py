"""The whole SA-LSTM, one step written once, equation by equation.

Yao et al. 2015 and the authors' code (README: the model's switches), at step t, from the previous
word y_{t-1}, the state (h_{t-1}, c_{t-1}) and a clip's frames v_1..v_K:

  attention  e_i = w^T tanh(W_a h_{t-1} + U_a v_i + b_a); alpha = softmax over the real frames
             (model.attention picks it by name, models/attention.py)
  context    phi_t = beta_t sum_i alpha_i v_i,  beta_t = sigma(w_beta h_{t-1} + b_beta)
  LSTM       [i f g o] = W_y E[y_{t-1}] + W_h h_{t-1} + W_phi phi_t + b
             c_t = sigma(f) c_{t-1} + sigma(i) tanh(g),  h_t = sigma(o) tanh(c_t)
  output     p(y_t) = softmax(W_p tanh(W_o h_t + E[y_{t-1}] + W_c phi_t + b_o) + b_p)

Each line is one method of DecoderStep, whose parameters keep nn.LSTMCell's names; everything that
reads h_{t-1} is one matrix product. Searches and SCST use encode() and step(), training forward().
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from loader.vocabulary import PAD_ID
from models.attention import build_attention
from models.searches import draw, forbid_words


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(values.dtype)
    return (values * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True).clamp(min=1)


@dataclass
class EncodedClips:
    frames: torch.Tensor   # (B, K, F): projected frame features, padding zeroed
    keys: torch.Tensor     # what the attention precomputes per clip (models/attention.py)
    mask: torch.Tensor     # (B, K)
    state: tuple           # (h_0, c_0), one row per clip
    rows_per_clip: int = 1   # the most rows a clip has in the decode (beams, samples)
    cache: dict = field(default_factory=dict, repr=False)

    def cached(self, name, make):
        if name not in self.cache:
            self.cache[name] = make()
        return self.cache[name]

    def padding_bias(self, width: int) -> torch.Tensor:
        """(B * width * K, 1): -inf on padded frames, for attention to fold its mask into a product."""
        def make():
            zeros = self.keys.new_zeros(len(self.mask), width, self.mask.shape[1])
            return zeros.masked_fill(~self.mask.unsqueeze(1), float("-inf")).view(-1, 1)
        return self.cached(("padding_bias", width), make)

    def mean_weights(self) -> torch.Tensor:
        """(B, 1, K): each frame's share of the masked mean."""
        def make():
            one_hot = torch.eye(self.mask.shape[1], dtype=self.frames.dtype, device=self.frames.device)
            return masked_mean(one_hot.expand(self.mask.shape[0], -1, -1), self.mask).unsqueeze(1)
        return self.cached("mean_weights", make)


class FrameEncoder(nn.Module):
    """Optional linear frame projection, and h_0 = tanh(W_h v̄ + b_h), c_0 = tanh(W_c v̄ + b_c)."""

    def __init__(self, feature_size: int, hidden_size: int, projection, init_from_mean: bool):
        super().__init__()
        self.projection = nn.Linear(feature_size, projection) if projection else None
        self.output_size = projection or feature_size
        self.hidden_size = hidden_size
        if init_from_mean:
            self.init_h = nn.Linear(self.output_size, hidden_size)
            self.init_c = nn.Linear(self.output_size, hidden_size)
        self.init_from_mean = init_from_mean

    def forward(self, features: torch.Tensor, mask: torch.Tensor):
        frames = self.projection(features) if self.projection is not None else features
        frames = frames * mask.unsqueeze(-1).to(frames.dtype)   # padded frames are exactly zero
        if self.init_from_mean:
            mean = masked_mean(frames, mask)
            return frames, (torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)))
        return frames, (frames.new_zeros(frames.shape[0], self.hidden_size),) * 2


class DecoderStep(nn.Module):
    def __init__(self, vocab_size: int, feature_size: int, config, attention: nn.Module, fused_cell: bool = True):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)            # E
        self.attention = attention
        self.selector = nn.Linear(config.hidden_size, 1) if config.use_selector else None  # w_beta, b_beta
        # nn.LSTMCell holds weight_ih = [W_y | W_phi], weight_hh = W_h; lstm_update is the update
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
        self.fused_cell = fused_cell

    def maps(self) -> SimpleNamespace:
        """The weights as the equations use them, views taken once per batch (gradients reach them):
        [W_h; query map; w_beta] with the rows of each, W_y and W_phi."""
        query = self.attention.query_map()
        layers = [layer for layer in (query, self.selector) if layer is not None]
        weights = [self.lstm.weight_hh] + [layer.weight for layer in layers]
        biases = [self.lstm.bias_hh] + [torch.zeros_like(layer.weight[:, 0]) if layer.bias is None else layer.bias
                                        for layer in layers]
        # split, not slices: its backward writes each part's gradient once instead of a zero-filled whole
        word_weight, context_weight = self.lstm.weight_ih.split(
            [self.embedding.embedding_dim, self.lstm.input_size - self.embedding.embedding_dim], dim=1)
        return SimpleNamespace(hidden_weight=torch.cat(weights), hidden_bias=torch.cat(biases),
                               hidden_parts=[w.shape[0] for w in weights], has_query=query is not None,
                               word_weight=word_weight, context_weight=context_weight)

    def read_hidden(self, hidden: torch.Tensor, maps) -> tuple:
        """h_{t-1} -> (W_h h_{t-1} + bias_hh, the attention's query or None, beta logit or None)."""
        parts = iter(F.linear(hidden, maps.hidden_weight, maps.hidden_bias).split(maps.hidden_parts, dim=-1))
        gates = next(parts)
        query = next(parts) if maps.has_query else None
        beta = next(parts) if self.selector is not None else None
        return gates, query, beta

    @staticmethod
    def context(alpha: torch.Tensor, beta, frames: torch.Tensor) -> torch.Tensor:
        """phi_t = beta_t sum_i alpha_i v_i: (B, W, K) over (B, K, F), or any linear map of the v_i."""
        attended = torch.bmm(alpha, frames).flatten(0, 1)
        return attended if beta is None else torch.sigmoid(beta) * attended

    def word_gates(self, embedded: torch.Tensor, maps) -> torch.Tensor:
        """W_y E[y_{t-1}] + bias_ih."""
        return F.linear(embedded, maps.word_weight, self.lstm.bias_ih)

    @staticmethod
    def context_gates(context: torch.Tensor, maps) -> torch.Tensor:
        """W_phi phi_t."""
        return F.linear(context, maps.context_weight)

    def lstm_update(self, word_gates, hidden_gates, context_gates, cell: torch.Tensor) -> tuple:
        """(h_t, c_t) from the gates' three inputs, in nn.LSTMCell's order: i, f, g, o."""
        if self.fused_cell and cell.is_cuda and word_gates.dtype == hidden_gates.dtype == cell.dtype:
            # nn.LSTMCell's own CUDA kernel: the sum and the update in one launch
            return torch.ops.aten._thnn_fused_lstm_cell(word_gates + context_gates, hidden_gates, cell)[:2]
        gates = word_gates + hidden_gates + context_gates
        in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=-1)
        cell = torch.addcmul(forget_gate.sigmoid() * cell, in_gate.sigmoid(), cell_gate.tanh())
        return out_gate.sigmoid() * torch.tanh(cell), cell

    def output_context(self, context: torch.Tensor):
        """W_c phi_t (None without the deep output)."""
        return self.out_context(context) if self.out_context is not None else None

    def output(self, hidden: torch.Tensor, embedded: torch.Tensor, output_context) -> torch.Tensor:
        """W_p tanh(W_o h_t + E[y_{t-1}] + W_c phi_t + b_o) + b_p, dropout on h_t and the readout."""
        dropped = self.dropout(hidden)
        if self.out_hidden is None:
            return self.readout(dropped)
        return self.readout(self.dropout(torch.tanh(self.out_hidden(dropped) + embedded + output_context)))

    def projected_context(self, alpha, beta, clips, maps) -> tuple:
        """(W_phi phi_t, W_c phi_t or None) from [W_phi; W_c] applied to each clip's frames once."""
        stacked = maps.context_weight if self.out_context is None else torch.cat(
            [maps.context_weight, self.out_context.weight])
        projected = clips.cached("projected", lambda: F.linear(clips.frames, stacked))
        mapped = self.context(alpha, beta, projected)
        if self.out_context is None:
            return mapped, None
        return tuple(mapped.split([4 * self.hidden_size, self.out_context.out_features], dim=-1))

    def forward(self, previous_word, state, clips, width: int = 1):
        """previous_word (B*W,), state of B*W rows, `width` rows per clip -> logits, state, alpha."""
        maps = clips.cached("maps", self.maps)
        hidden, cell = state
        hidden_gates, query, beta = self.read_hidden(hidden, maps)
        alpha = self.attention.weights(hidden, clips, width, query)           # (B, W, K)
        if clips.rows_per_clip == 1:
            context = self.context(alpha, beta, clips.frames)
            gate_context, output_context = self.context_gates(context, maps), self.output_context(context)
        else:
            gate_context, output_context = self.projected_context(alpha, beta, clips, maps)
        embedded = self.embedding(previous_word)
        hidden, cell = self.lstm_update(self.word_gates(embedded, maps), hidden_gates, gate_context, cell)
        return self.output(hidden, embedded, output_context), (hidden, cell), alpha.flatten(0, 1)


class SALSTM(nn.Module):
    def __init__(self, vocab_size: int, feature_size: int, model_config, n_frames: int,
                 fused_cell: bool = True, fast_teacher_forcing: bool = True):
        super().__init__()
        c = model_config
        self.encoder = FrameEncoder(feature_size, c.hidden_size, c.frame_projection, c.init_from_mean)
        size = self.encoder.output_size
        self.decoder = DecoderStep(vocab_size, size, c, build_attention(size, c, n_frames), fused_cell)
        self.fast_teacher_forcing = fast_teacher_forcing

    def encode(self, features: torch.Tensor, mask: torch.Tensor, rows_per_clip: int = 1) -> EncodedClips:
        frames, state = self.encoder(features, mask)
        return EncodedClips(frames, self.decoder.attention.keys(frames), mask, state, rows_per_clip)

    def step(self, words: torch.Tensor, state: tuple, clips: EncodedClips, width: int = 1):
        return self.decoder(words, state, clips, width)

    def forward(self, features, mask, inputs, own_word_probability: float = 0.0):
        """Teacher forcing: inputs (B, T) -> logits (B, T, V), alpha (B, T, K)."""
        if own_word_probability > 0 or not self.fast_teacher_forcing:
            return self.step_loop(features, mask, inputs, own_word_probability)
        step = self.decoder
        clips = self.encode(features, mask)
        maps = clips.cached("maps", step.maps)
        hidden, cell = clips.state
        embedded = step.embedding(inputs)                                        # (B, T, E)
        hiddens, contexts, alphas = [], [], []
        # unbind, not word_gates[:, t]: one backward for all steps instead of a zero fill per step
        for word_gates in step.word_gates(embedded, maps).unbind(1):
            hidden_gates, query, beta = step.read_hidden(hidden, maps)
            alpha = step.attention.weights(hidden, clips, 1, query)              # (B, 1, K)
            context = step.context(alpha, beta, clips.frames)
            hidden, cell = step.lstm_update(word_gates, hidden_gates, step.context_gates(context, maps), cell)
            hiddens.append(hidden)
            contexts.append(context)
            alphas.append(alpha.squeeze(1))
        logits = step.output(torch.stack(hiddens, 1), embedded, step.output_context(torch.stack(contexts, 1)))
        return logits, torch.stack(alphas, 1)

    def step_loop(self, features, mask, inputs, own_word_probability: float = 0.0):
        """The plain loop over step(); own_word_probability: scheduled sampling (Bengio et al. 2015)."""
        clips = self.encode(features, mask)
        state, logits, alphas = clips.state, [], []
        for t in range(inputs.shape[1]):
            words = inputs[:, t]
            if t > 0 and own_word_probability > 0:
                with torch.no_grad():
                    own_logits = logits[-1].float().clone()
                    forbid_words(own_logits, t)
                    own = draw(torch.softmax(own_logits, dim=-1))
                    use_own = torch.rand(own.shape, device=own.device) < own_word_probability
                words = torch.where(use_own & (words != PAD_ID), own, words)
            step_logits, state, alpha = self.step(words, state, clips)
            logits.append(step_logits)
            alphas.append(alpha)
        return torch.stack(logits, 1), torch.stack(alphas, 1)


def build_model(config, vocab_size: int, feature_size: int, fused_cell: bool = True,
                fast_teacher_forcing: bool = True) -> SALSTM:
    """fused_cell and fast_teacher_forcing False: the plain paths the tests check the fast ones against."""
    return SALSTM(vocab_size, feature_size, config.model, config.features.n_frames, fused_cell, fast_teacher_forcing)
