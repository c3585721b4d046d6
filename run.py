"""Caption a split (default: test) from a checkpoint alone, and score it.

    python run.py --checkpoint runs/<run id>/best.pt
    python run.py --checkpoint runs/<run id>/best.pt --split val --eval.beam_size 3

Writes <split>_predictions.json / .csv (video id, caption, references) and <split>_scores.json
(BLEU-1..4, METEOR, ROUGE-L, CIDEr ×100, and per-video CIDEr) beside the checkpoint or in --out.
Any config field may be overridden (--corpus.data_root, --eval.*); fields that change the
model's shape cannot, since the weights fix them.
"""
from __future__ import annotations

import argparse
import os
import sys

import checkpoints
import config as config_module
from evaluation import evaluate, write_predictions
from loader.dataset import load_split
from utils import CaptionScorer, DataError, pick_device


def apply_overrides(config, args) -> None:
    for key in config_module.all_keys():
        value = getattr(args, key, None)
        if value is not None:
            config_module.set_field(config, key, value)


def caption_split(checkpoint_path: str, split: str, out_dir: str, args=None) -> dict:
    payload = checkpoints.load(checkpoint_path)
    model, config, vocab = checkpoints.model_from_checkpoint(payload, checkpoint_path)
    if args is not None:
        apply_overrides(config, args)
    device = pick_device(config.train.device)
    if config.corpus.name == "Demo":
        from splits.Demo import build_demo
        build_demo(config)
    videos = load_split(config, split).to(device)
    checkpoints.check_features_fit(payload, videos.features.shape[-1], checkpoint_path)
    model.to(device)
    with CaptionScorer(config.eval.metrics) as scorer:
        scores, predictions = evaluate(model, videos, vocab, config, scorer)
    write_predictions(predictions, videos, scores, out_dir, split)
    shown = " ".join(f"{k} {v:.1f}" for k, v in scores.items() if isinstance(v, (int, float)))
    print(f"{config.corpus.name} {split} ({len(videos)} videos): {shown}")
    print(f"predictions and scores written to {out_dir}/{split}_*")
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a best.pt written by train.py")
    parser.add_argument("--split", default=None, help="split to caption (default: the test split)")
    parser.add_argument("--out", default=None, help="output folder (default: the checkpoint's)")
    config_module.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        out_dir = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
        split = args.split or "test"
        caption_split(args.checkpoint, split, out_dir, args)
    except (DataError, config_module.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
