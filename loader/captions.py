"""Caption normalisation (callables str -> str, also for the in-process CIDEr-D; references for the COCO
scores stay raw for the PTB tokenizer) and training targets: every caption as a row of token ids."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import torch

from loader.vocabulary import BOS_ID, EOS_ID, PAD_ID, Vocabulary

_PUNCTUATION = re.compile(r"[^\w\s]|_")
TRANSFORMS = {  # in the order they apply
    "ascii_only": lambda text: unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii"),
    "lowercase": str.lower,
    "strip_punctuation": lambda text: _PUNCTUATION.sub(" ", text),  # a space, as in MSVD's lc_nopunc release
}


def caption_transforms(loader_config) -> list:
    return [transform for flag, transform in TRANSFORMS.items() if getattr(loader_config, flag)]


def tokenize(text: str, transforms: list) -> list:
    for transform in transforms:
        text = transform(text)
    return text.split()


@dataclass
class CaptionTargets:
    tokens: torch.Tensor       # (M, L+2): <bos> w_1 .. w_n <eos> <pad> ...
    lengths: torch.Tensor      # (M,) target length n + 1 (the words and <eos>), kept on the CPU
    video_index: torch.Tensor  # (M,) row of the caption's video in its VideoSplit
    n_dropped: int = 0         # captions empty after normalisation, or too long when dropped

    def __len__(self) -> int:
        return len(self.lengths)

    def to(self, device) -> "CaptionTargets":
        """Tokens and owners to the device; lengths stay on the CPU, where batches are planned."""
        self.tokens, self.video_index = self.tokens.to(device), self.video_index.to(device)
        return self


def tokenized_captions(references: list, loader_config) -> list:
    """Per video, the normalised token lists of its captions (empty ones left out)."""
    transforms = caption_transforms(loader_config)
    return [[tokens for tokens in (tokenize(c, transforms) for c in captions) if tokens] for captions in references]


def build_vocabulary(train_references: list, loader_config) -> Vocabulary:
    token_lists = (t for captions in tokenized_captions(train_references, loader_config) for t in captions)
    return Vocabulary.build(token_lists, loader_config.min_count, loader_config.max_vocab)


def encode_targets(references: list, vocab: Vocabulary, loader_config) -> CaptionTargets:
    max_words = loader_config.max_caption_words
    rows, owners = [], []
    for video, captions in enumerate(tokenized_captions(references, loader_config)):
        for tokens in captions:
            if len(tokens) <= max_words or not loader_config.drop_long_captions:
                rows.append([BOS_ID] + vocab.encode(tokens[:max_words]) + [EOS_ID])
                owners.append(video)
    width = max(map(len, rows), default=2)
    tokens = torch.tensor([row + [PAD_ID] * (width - len(row)) for row in rows], dtype=torch.long).view(-1, width)
    return CaptionTargets(tokens, torch.tensor([len(row) - 1 for row in rows], dtype=torch.long),
                          torch.tensor(owners, dtype=torch.long), sum(map(len, references)) - len(rows))
