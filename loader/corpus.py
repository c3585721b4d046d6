"""Everything training needs from a corpus: the three splits, the vocabulary and targets."""
from __future__ import annotations

from dataclasses import dataclass

from loader.captions import CaptionTargets, build_vocabulary, encode_targets
from loader.dataset import VideoSplit, load_split
from loader.vocabulary import Vocabulary


@dataclass
class TrainingData:
    train: VideoSplit
    val: VideoSplit
    test: VideoSplit                  # on the CPU during training (load_training_data)
    vocab: Vocabulary
    train_targets: CaptionTargets
    val_targets: CaptionTargets

    @property
    def feature_size(self) -> int:
        return self.train.features.shape[-1]


def load_training_data(config, device) -> TrainingData:
    """The splits and targets train.py uses; the test split stays on the CPU, leaving the device's memory free."""
    c = config.corpus
    train, val, test = (load_split(config, name) for name in (c.train_split, c.val_split, c.test_split))
    train, val = train.to(device), val.to(device)
    vocab = build_vocabulary(train.references, config.loader)       # training captions only
    targets = [encode_targets(s.references, vocab, config.loader).to(device) for s in (train, val)]
    return TrainingData(train, val, test, vocab, *targets)
