"""Which words may come next, the one rule of every search and of SCST's sampler.

Never <pad> or <bos>; <eos> only once min_len words are said; after max_len words only <eos>.
Step t (from 0) chooses the word after t words.
"""
from __future__ import annotations

from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID

# <pad>, <bos> and <eos> are ids 0-2 (loader/vocabulary.py): one slice names them, with no index
# tensor to copy to the device (beam search ranks <eos> apart from the words).
NEVER_NEXT = slice(0, 3)
assert sorted((PAD_ID, BOS_ID, EOS_ID)) == list(range(NEVER_NEXT.start, NEVER_NEXT.stop))


def must_end(step: int, max_len: int) -> bool:
    """max_len words said: only <eos> is left."""
    return step >= max_len


def may_end(step: int, min_len: int, max_len: int) -> bool:
    return step >= min_len or must_end(step, max_len)


def forbid_words(scores, step: int, min_len: int, max_len: int) -> None:
    """In place, -inf for the words that may not come next; scores (rows, V): logits or log-probs."""
    scores[:, PAD_ID] = float("-inf")
    scores[:, BOS_ID] = float("-inf")
    if not may_end(step, min_len, max_len):
        scores[:, EOS_ID] = float("-inf")
    if must_end(step, max_len):
        scores[:, :EOS_ID] = float("-inf")
        scores[:, EOS_ID + 1:] = float("-inf")
