"""Caption a split (default: test) from a checkpoint alone and score it, or caption video files.

    python run.py --checkpoint runs/<run id>/best.pt
    python run.py --checkpoint runs/<run id>/best.pt --split val --eval.beam_size 3
    python run.py --checkpoint runs/<run id>/shared     # or user/name: python -m sharing export's folder
    python run.py --checkpoint runs/<run id>/best.pt --pictures 10 [--videos data/MSVD/videos]
    python run.py --checkpoint runs/<run id>/best.pt --video clip.mp4 more_clips/ [--pictures DIR]

A split: <split>_predictions.json/.csv, _scores.json and _page.html go to --out, or beside the
checkpoint in eval/<split>_<search>[_<setting><value>...]/. Video files: one `video_id<TAB>caption`
line each; an unreadable video is reported and skipped (exit status 1). The config is the
checkpoint's: any field but --model.* may be overridden; --eval.metrics "" needs no Java.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from models import checkpoints
import config as config_module
from evaluation.predictions import evaluate, made_by, search_settings, shown, write_predictions
from captioning.page import split_page
from loader.dataset import load_split
import sharing
from splits.layout import corpus_paths, prepare_command
from evaluation.scorer import open_scorer
from utils import DataError, exit_status, pick_device


def check_split(config, split: str, checkpoint_path: str) -> None:
    c = config.corpus
    splits, paths = (c.train_split, c.val_split, c.test_split), corpus_paths(c.data_root, c.name)
    if split not in splits and not os.path.isfile(paths.split_json(split)):
        raise DataError(f"--split {split!r}: the splits of {checkpoint_path}'s corpus {c.name} are "
                        f"{', '.join(splits)}, and no split of that name is prepared in {paths.prepared}")


def output_folder(checkpoint_path: str, out: Optional[str], split: str, eval_config) -> str:
    """--out, else <checkpoint's folder>/eval/<split>_<search> with the settings off their defaults."""
    if out:
        return out
    search, defaults = search_settings(eval_config), search_settings(config_module.EvalConfig())
    name = "_".join([split, search.pop("search")] + [f"{key}{value:g}" if isinstance(value, float) else f"{key}{value}"
                                                      for key, value in search.items() if value != defaults.get(key)])
    return os.path.join(sharing.output_folder(checkpoint_path), "eval", name)


def caption_split(checkpoint_path: str, split: Optional[str], out_dir: Optional[str], args=None,
                  pictures: int = 0, videos_dir=None) -> dict:
    payload = checkpoints.load(checkpoint_path)
    model, config, vocab = checkpoints.model_from_checkpoint(payload, checkpoint_path)
    if args is not None:
        config_module.override(config, args)
    checkpoints.check_backbones(payload, config.features.backbones, checkpoint_path)
    recorded = (payload.get("corpus") or {}).get("data_root")   # a relative data_root: the one trained on
    if getattr(args, "corpus.data_root", None) is None and not os.path.isabs(config.corpus.data_root) and recorded:
        if not os.path.isdir(recorded):
            raise DataError(f"{checkpoint_path} was trained on the corpus in {recorded} (corpus.data_root "
                            f"{config.corpus.data_root!r} at training time), which is not there; give "
                            "--corpus.data_root DIR, the folder that holds it now")
        config.corpus.data_root = recorded
    split = split or config.corpus.test_split
    check_split(config, split, checkpoint_path)
    device = pick_device(config.train.device)
    videos = load_split(config, split).to(device)        # never built here: it must be the trained-on one
    checkpoints.check_split_fits(payload, split, videos.video_ids, videos.references, videos.dims,
                                 config.corpus.data_root, checkpoint_path, prepare_command(config))
    checkpoints.check_features_fit(payload, videos.features.shape[-1], checkpoint_path)
    out_dir = output_folder(checkpoint_path, out_dir, split, config.eval)
    model.to(device)
    from captioning.split_frames import SplitFrames   # its files are checked before the split is decoded
    report = (lambda note: print(f"note: {note}", file=sys.stderr)) if pictures > 0 or videos_dir else (lambda _: None)
    frames = SplitFrames(config, split, videos_dir, getattr(args, "every_n", None), report=report)
    with open_scorer(config.eval, "only the captions (and the in-process CIDEr-D with "
                                  "--train.select_metric CIDEr-D) are written") as scorer:
        scores, predictions = evaluate(model, videos, vocab, config, scorer)
    write_predictions(predictions, videos, scores, out_dir, split, made_by(checkpoint_path, split, config.eval))
    print(f"{config.corpus.name} {split} ({len(videos)} videos): {shown(scores)}")
    print(f"predictions{' and scores' if scores else ''} written to {out_dir}/{split}_*")
    print("the page to browse them:", split_page(out_dir, predictions, videos, scores, config, checkpoint_path, frames))
    if pictures > 0:
        from captioning.attention_map import draw_attention
        stored, folder = dict(zip(videos.video_ids, videos.n_frames)), os.path.join(out_dir, "attention")
        for prediction in predictions[:pictures]:
            vid = prediction["video_id"]
            draw_attention(os.path.join(folder, f"{vid}.png"), prediction["attention"].numpy(), prediction["caption"],
                           frames.frames(vid, stored[vid]), f"{vid}: {prediction['caption']}")
        print(f"{len(predictions[:pictures])} attention pictures written to {folder}")
    return scores


def caption_video_files(args) -> int:
    from captioning.video import caption_files
    _, failed = caption_files(args.checkpoint, args.video, args.every_n, args.weights, args.pictures,
                              config_overrides=lambda config: config_module.override(config, args),
                              show=lambda line: print(line, flush=True))
    if args.pictures:
        print(f"attention pictures written to {args.pictures}", file=sys.stderr)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = config_module.argument_parser(__doc__, prog="python run.py")
    parser.add_argument("--checkpoint", required=True, help="a best.pt, a shared folder or a Hub id (user/name)")
    parser.add_argument("--split", default=None, help="split to caption (default: the test split)")
    parser.add_argument("--out", default=None, help="output folder (default: eval/... beside the checkpoint)")
    parser.add_argument("--video", nargs="+", default=None, metavar="FILE_OR_DIR",
                        help="caption these video files (or those in these folders) instead of a split")
    parser.add_argument("--every_n", type=int, default=None, metavar="N",
                        help="features of every Nth frame (default: the training features' sampling, else 5)")
    parser.add_argument("--weights", nargs="+", default=None, metavar="NAME=PATH",
                        help="with --video: a backbone's weights (default: those recorded with the features)")
    parser.add_argument("--pictures", default=None, metavar="N_OR_DIR",
                        help="attention pictures: a folder with --video, else how many of the split's first videos")
    parser.add_argument("--videos", default=None, metavar="DIR", help="the corpus's video files, for thumbnails")
    config_module.add_arguments(parser, default_preset=None)    # the checkpoint's config, no preset
    parser.add_argument("--preset", help=argparse.SUPPRESS)     # only to say why it is refused
    args = parser.parse_args(argv)
    if args.preset is not None:
        parser.error("--preset: run.py starts from the checkpoint's config; override single fields "
                     "instead (e.g. --eval.beam_size 3)")
    if fixed := [key for key in config_module.given_keys(args) if key.startswith("model.")]:
        parser.error(f"{', '.join('--' + key for key in fixed)}: the checkpoint's weights fix the model; "
                     "train a new one with train.py to change it")
    if args.every_n is not None and args.every_n < 1:
        parser.error("--every_n must be at least 1")
    if args.video is not None and args.videos is not None:
        parser.error("--videos (thumbnails for split pictures) goes without --video (files to caption)")
    if args.videos is not None and not os.path.isdir(args.videos):
        parser.error(f"--videos {args.videos}: no such folder (it holds the corpus's video files, "
                     "for the pictures' thumbnails)")
    for option, path in (("--out", args.out), ("--pictures", args.pictures if args.video else None)):
        if path is not None and os.path.exists(path) and not os.path.isdir(path):
            parser.error(f"{option} {path}: a file is there; give a folder for the output")
    if args.video is None and args.pictures is not None and not args.pictures.isdigit():
        parser.error(f"--pictures for a split is a number of videos, got {args.pictures!r}")
    if args.video is not None:
        return exit_status(lambda: caption_video_files(args),
                           interrupted="interrupted: the captions printed so far stand; caption the "
                                       "other videos with another call")
    return exit_status(lambda: caption_split(args.checkpoint, args.split, args.out, args,
                                             int(args.pictures or 0), args.videos),
                       interrupted="interrupted: the predictions are written once the whole split is "
                                   "decoded; run the same command again")


if __name__ == "__main__":
    sys.exit(main())
