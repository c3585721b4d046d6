"""A split's CIDEr-D x 100 without Java, on the loader's normalised words (not the PTB tokenizer's)."""
from __future__ import annotations

import torch

from evaluation.cider_d import CiderD, padded_ids
from evaluation.coco import PER_VIDEO_KEY
from loader.captions import tokenized_captions
from loader.vocabulary import EOS_ID
from utils import DataError

CIDER_D = "CIDEr-D"


def wanted(config) -> bool:
    return config.train.select_metric == CIDER_D


def caption_ids(captions: list, vocab) -> torch.Tensor:
    """Decoded captions back to the model's word ids (exact: vocabulary words hold no space)."""
    return padded_ids([vocab.encode(caption.split()) + [EOS_ID] for caption in captions])


def score_split(predictions: list, videos, vocab, loader_config) -> tuple:
    """(corpus CIDEr-D, {video_id: CIDEr-D}) of one caption per video of the split."""
    references = tokenized_captions(videos.references, loader_config)
    empty = [vid for vid, refs in zip(videos.video_ids, references) if not refs]
    if empty:
        raise DataError(f"train.select_metric {CIDER_D} needs reference captions for every video of "
                        f"the {videos.name} split; {len(empty)} have none (e.g. {empty[:3]}): choose "
                        "the best checkpoint by another metric, e.g. --train.select_metric loss")
    row_of = {vid: row for row, vid in enumerate(videos.video_ids)}
    owners = torch.tensor([row_of[p["video_id"]] for p in predictions], dtype=torch.long)
    per_caption = CiderD(references, vocab).score(
        caption_ids([p["caption"] for p in predictions], vocab), owners).double() * 100.0
    return float(per_caption.mean()), {p["video_id"]: float(value) for p, value in zip(predictions, per_caption)}


def add_cider_d(scores: dict, predictions: list, videos, vocab, loader_config) -> None:
    """scores gains CIDER_D, corpus and per video."""
    scores[CIDER_D], per_video = score_split(predictions, videos, vocab, loader_config)
    for video_id, value in per_video.items():
        scores.setdefault(PER_VIDEO_KEY, {}).setdefault(video_id, {})[CIDER_D] = value
