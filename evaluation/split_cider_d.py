"""A split's CIDEr-D x 100 in-process (train.select_metric CIDEr-D, no Java): evaluation/cider_d.py
with document frequencies over the split, as COCO counts them; the words are the loader's normalised
ones, not the PTB tokenizer's."""
from __future__ import annotations

import torch

from evaluation.cider_d import CiderD
from evaluation.coco import PER_VIDEO_KEY
from loader.captions import tokenized_captions
from loader.vocabulary import EOS_ID, PAD_ID
from utils import DataError

CIDER_D = "CIDEr-D"     # its name in train.select_metric and in the scores


def wanted(config) -> bool:
    return config.train.select_metric == CIDER_D


def caption_ids(captions: list, vocab) -> torch.Tensor:
    """Decoded captions back to the model's word ids (exact: vocabulary words hold no space)."""
    rows = [vocab.encode(caption.split()) + [EOS_ID] for caption in captions]
    ids = torch.full((len(rows), max(len(row) for row in rows)), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return ids


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
    per_video = {p["video_id"]: float(value) for p, value in zip(predictions, per_caption)}
    return float(per_caption.mean()), per_video


def add_cider_d(scores: dict, predictions: list, videos, vocab, loader_config) -> None:
    """scores gains CIDER_D, corpus and per video."""
    corpus, per_video = score_split(predictions, videos, vocab, loader_config)
    scores[CIDER_D] = corpus
    videos_scores = scores.setdefault(PER_VIDEO_KEY, {})
    for video_id, value in per_video.items():
        videos_scores.setdefault(video_id, {})[CIDER_D] = value
