import math

import pytest
import torch

from config import Config
from models.loss import caption_nll, training_loss

LOGITS = torch.tensor([[[0.3, 2.0, 0.1, -0.5, 1.0, 0.0], [0.0, 0.0, 1.5, 0.2, -1.0, 0.4]],
                       [[1.0, -2.0, 0.0, 0.0, 0.7, 2.2], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]])
TARGETS = torch.tensor([[4, 2], [5, 0]])          # caption 0: w4 <eos>; caption 1: w5, then <pad>


def smoothed_by_hand(eps: float) -> list:
    """Per caption: sum over real tokens of -(1 - eps) log p(y) - eps/4 sum over <eos>, <unk>, w4, w5
    of log p(w) (6 words; <pad> and <bos> get no smoothing mass)."""
    totals = []
    for logits, targets in zip(LOGITS.tolist(), TARGETS.tolist()):
        total = 0.0
        for row, y in zip(logits, targets):
            if y == 0:
                continue
            log_z = math.log(sum(math.exp(v) for v in row))
            log_p = [v - log_z for v in row]
            total += -(1 - eps) * log_p[y] - eps / 4 * sum(log_p[w] for w in (2, 3, 4, 5))
        totals.append(total)
    return totals


def test_label_smoothing_zero_is_exactly_the_plain_nll():
    plain = torch.nn.functional.cross_entropy(LOGITS.reshape(-1, 6), TARGETS.reshape(-1), ignore_index=0,
                                              reduction="sum") / 2
    assert torch.equal(caption_nll(LOGITS, TARGETS, "caption_sum"), plain)
    assert torch.equal(caption_nll(LOGITS, TARGETS, "caption_sum", 0.0), plain)
    assert sum(smoothed_by_hand(0.0)) / 2 == pytest.approx(float(plain), rel=1e-6)


def test_label_smoothing_matches_the_formula_in_both_reductions():
    per_caption = smoothed_by_hand(0.2)
    summed = caption_nll(LOGITS, TARGETS, "caption_sum", 0.2)
    mean = caption_nll(LOGITS, TARGETS, "token_mean", 0.2)
    assert float(summed) == pytest.approx(sum(per_caption) / 2, rel=1e-6)     # 2 captions
    assert float(mean) == pytest.approx(sum(per_caption) / 3, rel=1e-6)       # 3 real tokens


def test_training_loss_smooths_the_total_and_logs_the_plain_nll():
    config = Config()
    plain_total, plain_nll = training_loss(LOGITS, None, TARGETS, None, config.train)
    config.train.label_smoothing = 0.2
    total, nll = training_loss(LOGITS, None, TARGETS, None, config.train)
    assert torch.equal(nll, plain_nll) and torch.equal(plain_total, plain_nll)
    assert float(total) == pytest.approx(sum(smoothed_by_hand(0.2)) / 2, rel=1e-6)
