"""CIDEr-D (coco-caption's definition) as batched tensor ops, no Java: SCST's reward and train.select_metric.
Per order n, sim(c, r) = sum_g min(tf_c, tf_r) tf_r idf^2 / (|c| |r|) * exp(-(len_c - len_r)^2 / (2 sigma^2)),
averaged over references, then orders, times 10; clipped=False, length_penalty=False give plain CIDEr."""
from __future__ import annotations

import math
from collections import namedtuple
from typing import Optional

import torch

from loader.vocabulary import EOS_ID, PAD_ID, SPECIALS, Vocabulary

_NO_KEY = torch.iinfo(torch.long).max    # sorts after every real n-gram key
_REFERENCE_CHUNK = 8192                  # reference rows keyed at once (bounds the memory)

# distinct n-grams of each row sorted by (row, key); key: the ids + 1 as digits of a base-`base` number
_NgramCounts = namedtuple("_NgramCounts", "row key count")


def padded_ids(rows: list) -> torch.Tensor:
    """Lists of word ids as one (R, L) tensor padded with <pad>."""
    ids = torch.full((len(rows), max(1, max(len(row) for row in rows))), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return ids


def caption_lengths(tokens: torch.Tensor) -> torch.Tensor:
    """Words before the first <eos> or <pad> of each row (the whole row if neither)."""
    ended = (tokens == EOS_ID) | (tokens == PAD_ID)
    return torch.where(ended.any(1), ended.long().argmax(1), tokens.shape[1])


def ngram_counts(tokens: torch.Tensor, lengths: torch.Tensor, n: int, base: int) -> _NgramCounts:
    """Counts of the n-grams (orders 1..n) of each row's first `lengths` tokens, all orders in one sort."""
    rows, width = tokens.shape
    digits = tokens + 1
    keys, valid, positions = [], [], torch.arange(width, device=tokens.device)
    for order in range(1, min(n, width) + 1):
        windows = digits.unfold(1, order, 1)                                  # (R, W-k+1, k)
        powers = base ** torch.arange(order - 1, -1, -1, device=tokens.device)
        keys.append((windows * powers).sum(-1))
        valid.append(positions[:width - order + 1] + order <= lengths.unsqueeze(1))
    if not keys:
        empty = tokens.new_zeros(0)
        return _NgramCounts(empty, empty, empty)
    keys = torch.cat(keys, 1).masked_fill(~torch.cat(valid, 1), _NO_KEY).sort(1).values
    kept = keys != _NO_KEY
    row = torch.arange(rows, device=tokens.device).unsqueeze(1).expand_as(keys)[kept]
    key = keys[kept]                                   # row-major: sorted by (row, key)
    new_run = torch.ones_like(key, dtype=torch.bool)
    new_run[1:] = (row[1:] != row[:-1]) | (key[1:] != key[:-1])
    starts = new_run.nonzero().squeeze(1)
    return _NgramCounts(row[starts], key[starts], torch.diff(starts, append=starts.new_tensor([len(key)])))


def ngram_order(key: torch.Tensor, n: int, base: int) -> torch.Tensor:
    """1..n: an order-k key lies in [base^(k-1), base^k)."""
    return torch.ones_like(key) + sum((key >= base ** k).long() for k in range(1, n))


class CiderD:
    """CIDEr-D against per-clip reference token lists; document_references give the document frequencies."""

    def __init__(self, references: list, vocab: Vocabulary, n: int = 4, sigma: float = 6.0, clipped: bool = True,
                 length_penalty: bool = True, document_references: Optional[list] = None):
        if not references or any(len(refs) == 0 or not all(refs) for refs in references):
            raise ValueError("CiderD needs at least one reference caption for every clip, none of them "
                             "empty (tokenized_captions leaves empty ones out)")
        self.n, self.sigma, self.clipped, self.length_penalty = n, sigma, clipped, length_penalty
        self.vocab_size = len(vocab)
        # a reference's "<unk>" is a plain word, with an id no candidate can produce
        word_ids = {word: i for word, i in vocab.index.items() if word not in SPECIALS}
        scored, scored_clip = self._encode(references, word_ids)
        documents = references if document_references is None else document_references
        document_rows, document_clip = ((scored, scored_clip) if document_references is None
                                        else self._encode(documents, word_ids))
        self.base = max(self.vocab_size, len(word_ids) + len(SPECIALS)) + 1
        if self.base ** n >= 2 ** 63:
            raise ValueError(f"CiderD: {self.base - 1} distinct words are too many for exact int64 {n}-gram keys "
                             f"(at most {int((2 ** 63) ** (1 / n)) - 1}); lower loader.max_vocab")
        self.n_clips, self.n_documents = len(references), len(documents)
        refs = self._counts(scored)
        docs = refs if document_rows is scored else self._counts(document_rows)
        self.keys = torch.unique(torch.cat([refs.key, docs.key]))               # (U,) sorted
        n_keys = len(self.keys)
        # document frequency: in how many clips' reference sets each n-gram occurs
        in_clip = torch.unique(document_clip[docs.row] * n_keys + torch.searchsorted(self.keys, docs.key))
        document_frequency = torch.bincount(in_clip % n_keys, minlength=n_keys).double()
        self.log_documents = math.log(float(self.n_documents))
        self.idf = self.log_documents - torch.log(document_frequency.clamp(min=1.0))
        # the references' tf-idf norms per order and lengths, padded to (clips, max_refs, ...)
        dense = torch.searchsorted(self.keys, refs.key)
        order = ngram_order(refs.key, self.n, self.base)
        weight = refs.count.double() * self.idf[dense]
        ref_norm = torch.zeros(len(scored) * self.n, dtype=torch.double)
        ref_norm.index_add_(0, refs.row * self.n + order - 1, weight ** 2)
        refs_per_clip = torch.bincount(scored_clip, minlength=self.n_clips)
        first_ref = torch.cumsum(refs_per_clip, 0) - refs_per_clip
        self.max_refs = int(refs_per_clip.max())
        local = torch.arange(len(scored)) - first_ref[scored_clip]
        self.ref_norm = torch.zeros(self.n_clips, self.max_refs, self.n, dtype=torch.double)
        self.ref_norm[scored_clip, local] = ref_norm.view(-1, self.n).sqrt()
        self.ref_length = torch.zeros(self.n_clips, self.max_refs, dtype=torch.double)
        self.ref_length[scored_clip, local] = caption_lengths(scored).double()
        self.ref_mask = torch.zeros(self.n_clips, self.max_refs, dtype=torch.bool)
        self.ref_mask[scored_clip, local] = True
        self.refs_per_clip = refs_per_clip.double()
        # every (clip, n-gram) -> (reference, tf) entry, sorted by clip * U + n-gram for searchsorted
        entry, by_entry = (scored_clip[refs.row] * n_keys + dense).sort()
        self.entry, self.entry_ref, self.entry_count = entry, local[refs.row][by_entry], refs.count[by_entry]
        self._on_device = {}    # the tables per device

    @staticmethod
    def _encode(references: list, word_ids: dict) -> tuple:
        """Token lists -> padded (R, L) ids (clip-major) and each row's clip; new words get fresh ids."""
        flat = [[word_ids.setdefault(w, len(word_ids) + len(SPECIALS)) for w in tokens]
                for captions in references for tokens in captions]
        clip = [c for c, captions in enumerate(references) for _ in captions]
        return padded_ids(flat), torch.tensor(clip, dtype=torch.long)

    def _counts(self, ids: torch.Tensor) -> _NgramCounts:
        parts = []
        for start in range(0, len(ids), _REFERENCE_CHUNK):
            chunk = ids[start:start + _REFERENCE_CHUNK]
            row, key, count = ngram_counts(chunk, caption_lengths(chunk), self.n, self.base)
            parts.append((row + start, key, count))
        return _NgramCounts(*map(torch.cat, zip(*parts)))

    _TABLES = "keys idf ref_norm ref_length ref_mask refs_per_clip entry entry_ref entry_count".split()

    def score(self, candidates: torch.Tensor, video_index: torch.Tensor) -> torch.Tensor:
        """(N,) float32 CIDEr-D of candidates (N, L), ended by <eos>, against the clips video_index (N,)."""
        device = candidates.device
        if device not in self._on_device:
            self._on_device[device] = {name: getattr(self, name).to(device) for name in self._TABLES}
        t, video_index = self._on_device[device], video_index.to(device)
        if candidates.dim() != 2 or video_index.shape != candidates.shape[:1]:
            raise ValueError(f"CiderD.score wants candidates (N, L) and video_index (N,), got "
                             f"{tuple(candidates.shape)} and {tuple(video_index.shape)}")
        rows = len(candidates)
        if rows == 0:
            return torch.zeros(0, device=device)
        low_id, high_id = torch.aminmax(candidates)
        if int(low_id) < 0 or int(high_id) >= self.vocab_size:
            raise ValueError(f"CiderD.score: candidate word ids must lie in [0, {self.vocab_size})")
        lengths = caption_lengths(candidates)
        cand = ngram_counts(candidates[:, :int(lengths.max())], lengths, self.n, self.base)
        n_keys = len(t["keys"])
        position = torch.searchsorted(t["keys"], cand.key).clamp(max=max(n_keys - 1, 0))
        known = t["keys"][position] == cand.key
        idf = torch.where(known, t["idf"][position], torch.full_like(t["idf"][:1], self.log_documents))
        order = ngram_order(cand.key, self.n, self.base)
        norm = torch.zeros(rows * self.n, dtype=torch.double, device=device)
        norm.index_add_(0, cand.row * self.n + order - 1, (cand.count.double() * idf) ** 2)
        norm = norm.view(rows, self.n).sqrt()

        # matches: every (candidate n-gram, reference of its clip holding it) pair
        wanted = video_index[cand.row] * n_keys + position
        low, high = torch.searchsorted(t["entry"], wanted), torch.searchsorted(t["entry"], wanted, right=True)
        hits = torch.where(known, high - low, torch.zeros_like(low))
        match = torch.repeat_interleave(torch.arange(len(hits), device=device), hits)
        first_hit = torch.cumsum(hits, 0) - hits
        entry = low[match] + torch.arange(len(match), device=device) - first_hit[match]
        tf_ref, tf_cand = t["entry_count"][entry].double(), cand.count[match].double()
        if self.clipped:
            tf_cand = torch.minimum(tf_cand, tf_ref)
        dot = torch.zeros(rows * self.max_refs * self.n, dtype=torch.double, device=device)
        slot = (cand.row[match] * self.max_refs + t["entry_ref"][entry]) * self.n + order[match] - 1
        dot.index_add_(0, slot, tf_cand * tf_ref * idf[match] ** 2)
        dot = dot.view(rows, self.max_refs, self.n)

        norms = norm.unsqueeze(1) * t["ref_norm"][video_index]                    # (N, R, n)
        similarity = torch.where(norms > 0, dot / norms.clamp(min=1e-300), torch.zeros_like(dot))
        if self.length_penalty:
            delta = lengths.double().unsqueeze(1) - t["ref_length"][video_index]
            similarity = similarity * torch.exp(-delta ** 2 / (2 * self.sigma ** 2)).unsqueeze(-1)
        similarity = similarity * t["ref_mask"][video_index].unsqueeze(-1)
        per_order = similarity.sum(1) / t["refs_per_clip"][video_index].unsqueeze(1)
        return (10.0 * per_order.mean(1)).float()
