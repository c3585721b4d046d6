"""DecoderStep's equations in the fused form that teacher forcing and beam search both use.

DecoderStep (models/decoder.py) is the plain reference: nn.LSTMCell and the attention module,
one map at a time. This is the same step rearranged for speed, written once:
- everything that reads h_{t-1} (LSTM gates W_hh, attention query W_a, beta gate w_beta) is
  one matrix product;
- attention weights are computed for `width` rows per clip (the beams of beam search; width 1
  in teacher forcing) against keys, padding mask and mean-pooling weights prepared once per clip;
- parts of a product are taken with split/chunk, whose backward writes each gradient once
  (a slice's backward fills a zero tensor of the whole product, once per step).
The callers choose how phi_t enters the gates: teacher forcing multiplies phi_t by the LSTM's
input weights each step; beam search mixes frames projected by those weights once per clip.
tests/test_fast_path.py and tests/test_decoding.py check both against DecoderStep.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class FusedStep:
    """Views of one DecoderStep's weights (no copies: gradients reach the module's parameters),
    and what every step needs of the clips it decodes, computed once."""

    def __init__(self, step, clips):
        self.step = step
        self.clips = clips
        self.padding = ~clips.mask.unsqueeze(1)                  # (B, 1, K)
        mean = clips.mask.to(clips.frames.dtype)                 # mean pooling's fixed weights
        self.mean_alpha = (mean / mean.sum(-1, keepdim=True).clamp(min=1)).unsqueeze(1)
        self.size = step.lstm.hidden_size
        n_embed = step.embedding.embedding_dim
        self.word_weight = step.lstm.weight_ih[:, :n_embed]      # E[y_{t-1}]'s share of the gates
        self.context_weight = step.lstm.weight_ih[:, n_embed:]   # phi_t's share of the gates
        self.query = getattr(step.attention, "query", None)      # None for mean pooling
        weights, biases = [step.lstm.weight_hh], [step.lstm.bias_hh]
        if self.query is not None:
            weights.append(self.query.weight)
            biases.append(torch.zeros_like(self.query.weight[:, 0]))
        if step.selector is not None:
            weights.append(step.selector.weight)
            biases.append(step.selector.bias)
        self.hidden_weight, self.hidden_bias = torch.cat(weights), torch.cat(biases)
        self.hidden_parts = [w.shape[0] for w in weights]

    def context_maps(self) -> torch.Tensor:
        """Rows of every map that reads phi_t: the LSTM gates' [4H], then W_phi's [E] if any."""
        maps = [self.context_weight]
        if self.step.out_context is not None:
            maps.append(self.step.out_context.weight)
        return torch.cat(maps)

    def word_gates(self, embedded: torch.Tensor) -> torch.Tensor:
        """E[y_{t-1}] W_ih^emb + b_ih, for any leading shape."""
        return F.linear(embedded, self.word_weight, self.step.lstm.bias_ih)

    def read_hidden(self, hidden: torch.Tensor):
        """h_{t-1} -> (its share of the LSTM gates, attention query or None, beta logit or None)."""
        projected = F.linear(hidden, self.hidden_weight, self.hidden_bias)
        # split, not slices: its backward writes each part's gradient once, where every
        # slice's backward would fill a zero tensor of the whole product.
        parts = iter(projected.split(self.hidden_parts, dim=-1))
        gates = next(parts)
        query = next(parts) if self.query is not None else None
        beta = next(parts) if self.step.selector is not None else None
        return gates, query, beta

    def attention_weights(self, query, width: int) -> torch.Tensor:
        """alpha (B, width, K) for rows that are `width` consecutive rows per clip."""
        batch, n_frames = self.clips.mask.shape
        if query is None:                          # mean pooling: every real frame alike
            return self.mean_alpha.expand(batch, width, n_frames)
        keys = self.clips.keys.unsqueeze(1)                     # (B, 1, K, A)
        energy = self.step.attention.score(torch.tanh(keys + query.view(batch, width, 1, -1))).squeeze(-1)
        return torch.softmax(energy.masked_fill(self.padding, float("-inf")), dim=-1)

    @staticmethod
    def gated(beta, context: torch.Tensor) -> torch.Tensor:
        """beta_t * context: the selector scales everything phi_t feeds."""
        return context if beta is None else torch.sigmoid(beta) * context

    def lstm(self, gates: torch.Tensor, cell: torch.Tensor):
        """nn.LSTMCell's update from its summed gate inputs (its order: input, forget, cell, output)."""
        in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=-1)
        in_gate, forget_gate, out_gate = in_gate.sigmoid(), forget_gate.sigmoid(), out_gate.sigmoid()
        cell = torch.addcmul(forget_gate * cell, in_gate, cell_gate.tanh())
        return out_gate * torch.tanh(cell), cell
