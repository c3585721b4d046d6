"""CIDEr-D written the plain way, one caption and one n-gram at a time: the oracle that
evaluation/cider_d.py is tested against."""
from __future__ import annotations

import math
from collections import Counter


def ngrams(tokens: list, n: int) -> Counter:
    """Counts of the n-grams of orders 1..n, keyed by tuples of tokens."""
    return Counter(tuple(tokens[i:i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1))


def document_frequency(documents: list, n: int) -> Counter:
    """In how many clips (one document = all references of a clip) each n-gram occurs."""
    counts = Counter()
    for references in documents:
        counts.update(set().union(*(ngrams(tokens, n) for tokens in references)))
    return counts


def cider_d(candidate: list, references: list, df: Counter, n_documents: int, n: int = 4,
            sigma: float = 6.0, clipped: bool = True, length_penalty: bool = True) -> float:
    """CIDEr-D of one candidate (a token list) against its clip's references (token lists).

    A token that appears in no reference (such as <unk>) is a word like any other: it counts in
    the length and in the candidate's vector, and matches nothing."""
    def vectors(tokens):
        weights = [{} for _ in range(n)]
        for gram, tf in ngrams(tokens, n).items():
            weights[len(gram) - 1][gram] = (tf, tf * (math.log(n_documents) - math.log(max(1.0, df[gram]))))
        norms = [math.sqrt(sum(w * w for _, w in order.values())) for order in weights]
        return weights, norms

    cand, cand_norm = vectors(candidate)
    total = [0.0] * n
    for reference in references:
        ref, ref_norm = vectors(reference)
        delta = len(candidate) - len(reference)
        penalty = math.exp(-delta ** 2 / (2 * sigma ** 2)) if length_penalty else 1.0
        for k in range(n):
            dot = 0.0
            for gram, (tf_c, w_c) in cand[k].items():
                if gram in ref[k]:
                    tf_r, w_r = ref[k][gram]
                    dot += (min(w_c, w_r) if clipped else w_c) * w_r
            if cand_norm[k] > 0 and ref_norm[k] > 0:
                total[k] += dot / (cand_norm[k] * ref_norm[k]) * penalty
    return 10.0 * sum(t / len(references) for t in total) / n
