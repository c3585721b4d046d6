"""CIDEr-D of a split's decoded captions, computed in-process: train.select_metric "CIDEr-D".

No Java and no pycocoevalcap: it is evaluation/cider_d.py (SCST's reward), with the document
frequencies counted over the scored split's own references, as the COCO CIDEr-D counts them over
the set it scores, and reported x100 like the COCO scores. It differs from COCO's CIDEr only in
the words: references are normalised by the loader's caption transforms (as for training), not by
the PTB tokenizer, and a caption is scored as the model's word ids, so its <unk> matches nothing.

Built anew for each call (about 0.1 s for MSVD's 100 validation clips, 0.7 s for 497 clips of 40
captions, on the 2-core CPU): no table outlives the split it was built for.
"""
from __future__ import annotations

import torch

from evaluation.cider_d import CiderD
from evaluation.coco import PER_VIDEO_KEY
from loader.captions import tokenized_captions
from loader.vocabulary import EOS_ID, PAD_ID
from utils import DataError

CIDER_D = "CIDEr-D"     # its name in train.select_metric and in the scores


def wanted(config) -> bool:
    """Whether evaluation computes it: when it chooses the best checkpoint."""
    return config.train.select_metric == CIDER_D


def caption_ids(captions: list, vocab) -> torch.Tensor:
    """Decoded captions back to the model's word ids, each ended by <eos> then <pad>. Exact:
    vocab.decode joins vocabulary words (which hold no space) and writes <unk> as "<unk>"."""
    rows = [vocab.encode(caption.split()) + [EOS_ID] for caption in captions]
    ids = torch.full((len(rows), max(len(row) for row in rows)), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return ids


def score_split(predictions: list, videos, vocab, loader_config) -> tuple:
    """(corpus CIDEr-D x100, {video_id: CIDEr-D x100}) of one caption per video of the split."""
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
    """scores gains CIDER_D, and each video's CIDEr-D beside its COCO scores (per-category means)."""
    corpus, per_video = score_split(predictions, videos, vocab, loader_config)
    scores[CIDER_D] = corpus
    videos_scores = scores.setdefault(PER_VIDEO_KEY, {})
    for video_id, value in per_video.items():
        videos_scores.setdefault(video_id, {})[CIDER_D] = value
