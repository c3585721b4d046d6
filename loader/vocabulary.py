"""Word <-> index mapping, built from training captions only and saved as a plain list."""
from __future__ import annotations

from collections import Counter
from itertools import takewhile
from typing import Iterable, Optional

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)


class Vocabulary:
    def __init__(self, words: list):
        if list(words[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {list(words[:4])}")
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, token_lists: Iterable[list], min_count: int = 1, max_size: Optional[int] = None) -> "Vocabulary":
        """Words seen at least min_count times, most frequent first (ties alphabetical)."""
        counts = Counter(token for tokens in token_lists for token in tokens)
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls(SPECIALS + kept[:max_size])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: list) -> list:
        return [self.index.get(token, UNK_ID) for token in tokens]

    def decode(self, ids) -> str:
        """Ids up to the first <eos>, specials other than <unk> dropped, joined by spaces."""
        return " ".join(self.words[i] for i in takewhile(lambda i: i != EOS_ID, map(int, ids)) if i >= UNK_ID)

    def to_list(self) -> list:
        return list(self.words)
