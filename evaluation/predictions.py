"""Caption a split with the one decoding module, score it, and write predictions to files."""
from __future__ import annotations

import csv
import dataclasses
import io
import os
import time

import torch

from loader.batches import video_batches
from models.searches import SEARCHES, decode
from evaluation import split_cider_d
from evaluation.coco import PER_VIDEO_KEY
from utils import atomic_save_json, atomic_write_bytes, to_device


@torch.no_grad()
def caption_videos(model, videos, vocab, eval_config, batch_size: int) -> list:
    """One prediction per video: {"video_id", "caption", "log_prob", "attention" (L, K)}."""
    model.eval()
    device = next(model.parameters()).device
    predictions = []
    for rows, features, mask in video_batches(videos, batch_size):
        result = decode(model, to_device(features, device), to_device(mask, device), eval_config)
        tokens, lengths = result.tokens.cpu(), result.lengths.cpu()
        # float32: numpy (attention pictures) cannot take the bf16 weights of autocast decoding
        attention, log_probs = result.attention.float().cpu(), result.log_probs.cpu()
        for j, row in enumerate(rows):
            predictions.append({"video_id": videos.video_ids[row], "caption": vocab.decode(tokens[j]),
                                "log_prob": float(log_probs[j]), "attention": attention[j, :int(lengths[j])]})
    return predictions


def evaluate(model, videos, vocab, config, scorer, seconds: dict | None = None) -> tuple:
    """(scores, predictions) of the split; seconds, when given, receives the times of decode and score."""
    started = time.perf_counter()
    predictions = caption_videos(model, videos, vocab, config.eval, config.loader.eval_batch_size)
    decoded = time.perf_counter()
    scores = scorer.score(dict(zip(videos.video_ids, videos.references)),
                          {p["video_id"]: p["caption"] for p in predictions})
    if split_cider_d.wanted(config):
        split_cider_d.add_cider_d(scores, predictions, videos, vocab, config.loader)
    if seconds is not None:
        seconds.update(decode=decoded - started, score=time.perf_counter() - decoded)
    if scores and any(c is not None for c in videos.categories):
        groups = {}
        for vid, category in zip(videos.video_ids, videos.categories):
            groups.setdefault(str(category), []).append(scores.get(PER_VIDEO_KEY, {}).get(vid, {}))
        scores["by_category"] = {c: {"videos": len(rows), **{m: sum(r[m] for r in rows) / len(rows) for m in rows[0]}}
                                 for c, rows in sorted(groups.items())}
    return scores, predictions


def numeric(scores: dict) -> dict:
    return {k: v for k, v in scores.items() if isinstance(v, (int, float))}


def shown(scores: dict) -> str:
    return " ".join(f"{k} {v:.1f}" for k, v in numeric(scores).items()) or "not scored"


def search_settings(eval_config) -> dict:
    """The search and the eval fields it reads: its own, and those that no search claims for itself."""
    claimed = {name for search in SEARCHES.values() for name in search.fields}
    own = SEARCHES[eval_config.search].fields
    return {"search": eval_config.search,
            **{f.name: getattr(eval_config, f.name) for f in dataclasses.fields(eval_config)
               if f.name not in ("search", "metrics", "cuda_graphs") and (f.name in own or f.name not in claimed)}}


def made_by(checkpoint_path: str, split: str, eval_config) -> dict:   # a Hub id as it is
    checkpoint = os.path.abspath(checkpoint_path) if os.path.exists(checkpoint_path) else checkpoint_path
    return {"checkpoint": checkpoint, "split": split, **search_settings(eval_config)}


def write_predictions(predictions: list, videos, scores: dict, out_dir: str, name: str, origin: dict) -> None:
    """<name>_predictions.json/.csv and <name>_scores.json; without scores, a stale scores file is removed."""
    os.makedirs(out_dir, exist_ok=True)
    scores_path = os.path.join(out_dir, f"{name}_scores.json")
    if os.path.exists(scores_path):
        os.remove(scores_path)
    references = dict(zip(videos.video_ids, videos.references))
    rows = [{"video_id": p["video_id"], "caption": p["caption"], "log_prob": p["log_prob"],
             "references": references[p["video_id"]]} for p in predictions]
    atomic_save_json(rows, os.path.join(out_dir, f"{name}_predictions.json"))
    text = io.StringIO()
    csv.writer(text).writerows([["video_id", "caption", "references"]] + [
        [row["video_id"], row["caption"], " | ".join(row["references"])] for row in rows])
    atomic_write_bytes(os.path.join(out_dir, f"{name}_predictions.csv"),
                       lambda handle: handle.write(text.getvalue().encode("utf-8")))
    if scores:
        atomic_save_json({**scores, "made_by": origin}, scores_path)
