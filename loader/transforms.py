"""Caption normalisation for training targets and the in-process CIDEr-D, as callables (str -> str);
references for the COCO scores stay raw for the PTB tokenizer, as the protocol wants."""
from __future__ import annotations

import re
import unicodedata

_PUNCTUATION = re.compile(r"[^\w\s]|_")


def to_ascii(text: str) -> str:
    """Fold accents (café -> cafe) and drop what has no ASCII form."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def strip_punctuation(text: str) -> str:
    """Punctuation becomes a space, as in the English MSVD release (lc_nopunc)."""
    return _PUNCTUATION.sub(" ", text)


def caption_transforms(loader_config) -> list:
    """The transforms that loader_config switches on, in a fixed order."""
    switches = (("ascii_only", to_ascii), ("lowercase", str.lower), ("strip_punctuation", strip_punctuation))
    return [transform for flag, transform in switches if getattr(loader_config, flag)]


def tokenize(text: str, transforms: list) -> list:
    for transform in transforms:
        text = transform(text)
    return text.split()
