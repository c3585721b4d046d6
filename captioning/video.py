"""Caption video files with a checkpoint, through the training features' sampling and preprocessing."""
from __future__ import annotations

import json
import os
import sys
from collections import namedtuple
from typing import Callable, Optional

import numpy as np
import torch

from models import checkpoints
from captioning.attention_map import SeenFrames, draw_attention
from evaluation.predictions import caption_videos
from extraction.backbones import BACKBONES, build_backbone, canonical_name
from extraction.extract import find_videos, video_id
from extraction.recorded import recorded_weights
from extraction.store import NonFiniteFeatures
from extraction.video import DEFAULT_EVERY_N, VideoReadError, parse_sampling, require_pyav
from loader.dataset import VideoSplit
from loader.frames import pad_frames, sample_frame_indices
from utils import DataError, pick_device


# one video ready for the decoder: (K, D) float32 features, zero after the real frames; their (K,) mask; its SeenFrames
Clip = namedtuple("Clip", "video_id features mask frames")


def load_backbones(backbones: list, weights: dict, device: str, recorded: Optional[dict] = None) -> list:
    """The checkpoint's backbones: --weights, else the weights the features recorded, else the default."""
    recorded, built = recorded or {}, []
    for name in backbones:
        spec = BACKBONES.get(canonical_name(name))
        source = weights.get(name) or (recorded_weights(recorded, name) if spec and spec.build else None)
        if name not in weights and source and os.path.isabs(source) and not os.path.isdir(source):
            raise DataError(f"the {name} weights recorded with the checkpoint's training features, the "
                            f"folder {source}, are not there (moved or deleted); give their folder now: "
                            f"--weights {name}=FOLDER")
        built.append(build_backbone(canonical_name(name) or name, source, device))
    return built


def read_clip(path: str, backbones: list, every_n: int, k: int, thumbnails: bool = False,
              n_sampled: Optional[int] = None) -> Clip:
    """Features of every every_n-th frame (or n_sampled frames) from each backbone, sampled to K."""
    decoded, streams = {}, []
    for backbone in backbones:  # backbones that decode alike share one decoding
        if backbone.decoding not in decoded:
            decoded[backbone.decoding] = backbone.read(path, every_n, n_sampled)
        stream = backbone.features(decoded[backbone.decoding])
        if not np.isfinite(stream).all():
            raise NonFiniteFeatures(f"the {backbone.name} features of video {path} hold NaN or inf; "
                                    "the model cannot caption them (damaged weights, or weights of "
                                    "another architecture, give such numbers)")
        streams.append(stream)
    features = np.concatenate(streams, axis=1)
    chosen = sample_frame_indices(len(features), k)
    sampled = decoded[backbones[0].decoding]
    return Clip(video_id(path), *pad_frames(features[chosen], k),
                SeenFrames([sampled.indices[i] for i in chosen], sampled.frames[chosen] if thumbnails else None))


def caption_clip(model, vocab, config, clip: Clip, device) -> dict:
    videos = VideoSplit("videos", [clip.video_id], torch.from_numpy(clip.features)[None].to(device),
                        torch.from_numpy(clip.mask)[None].to(device), [[]])
    return caption_videos(model, videos, vocab, config.eval, batch_size=1)[0]


def caption_files(checkpoint_path: str, paths: list, every_n: Optional[int] = None, weights: Optional[list] = None,
                  pictures_dir: Optional[str] = None, config_overrides: Callable = lambda config: None,
                  show: Callable = print) -> tuple:
    """(predictions, failed) of every video file in paths, each shown as it is done, each failure on stderr."""
    payload = checkpoints.load(checkpoint_path)
    model, config, vocab = checkpoints.model_from_checkpoint(payload, checkpoint_path)
    config_overrides(config)
    backbones, chosen_weights = list(config.features.backbones), {}
    for item in weights or []:   # --weights NAME=PATH items (a bare PATH for one backbone)
        name, sep, path = item.partition("=")
        if not sep:
            if len(backbones) != 1:
                raise DataError(f"--weights {item}: the checkpoint has backbones {'+'.join(backbones)}; "
                                "say which one the file is for with NAME=PATH")
            name, path = backbones[0], item
        match = [b for b in backbones if b.lower() == name.lower()]
        if not match:
            raise DataError(f"--weights {item}: {name} is not a backbone of the checkpoint ({'+'.join(backbones)})")
        chosen_weights[match[0]] = path
    missing = [b for b in backbones if canonical_name(b) is None and b not in chosen_weights]
    if missing:
        raise DataError(
            f"{checkpoint_path} was trained on {'+'.join(backbones)} features, and {', '.join(missing)} cannot be "
            "extracted from a video file (the demo's Appearance and Motion streams exist only for its rendered clips; "
            "C3D, GoogLeNet and other published feature files come from other extractors; a torchvision classifier "
            f"needs --weights NAME=PATH). To caption your own videos, train on features this project extracts from "
            f"video files ({', '.join(BACKBONES)}), for example:\n"
            "  python -m extraction --videos data/MSVD/videos --corpus.name MSVD\n"
            "  python -m splits.MSVD --features.backbones EfficientNetLite0\n"
            "  python train.py --preset MSVD --features.backbones EfficientNetLite0")
    files = find_videos(paths)
    if not files:
        raise DataError(f"no video files in {' '.join(paths)}")
    require_pyav()
    device = pick_device(config.train.device)
    recorded = payload.get("feature_extraction") or {}
    extractors = load_backbones(backbones, chosen_weights, str(device), recorded)
    checkpoints.check_features_fit(payload, sum(b.feature_size for b in extractors), checkpoint_path)
    for backbone in extractors:
        stored = (recorded.get(backbone.name) or {}).get("preprocessing")
        if stored is not None and json.loads(stored) != backbone.preprocessing():
            raise DataError(f"{checkpoint_path} was trained on {backbone.name} features made with the preprocessing "
                            f"{stored} (weights {recorded[backbone.name].get('weights')}), but the weights "
                            f"{backbone.weights} state {json.dumps(backbone.preprocessing(), sort_keys=True)}; give "
                            f"--weights {backbone.name}=<the weights the training features were extracted with>")
    model.to(device)
    every_n, n_sampled = (every_n, None) if every_n else parse_sampling(payload.get("feature_sampling"))
    every_n = every_n or DEFAULT_EVERY_N
    predictions, failed = [], {}
    for path in files:
        try:
            clip = read_clip(path, extractors, every_n, config.features.n_frames, bool(pictures_dir), n_sampled)
        except (VideoReadError, NonFiniteFeatures) as error:
            failed[path] = f"{error}; skipped"
        except Exception as error:  # a failure PyAV does not classify: still only this file
            failed[path] = f"cannot caption video {path} ({type(error).__name__}: {error}); skipped"
        if path in failed:
            print(f"error: {failed[path]}", file=sys.stderr, flush=True)
            continue
        prediction = caption_clip(model, vocab, config, clip, device)
        show(f"{clip.video_id}\t{prediction['caption']}")
        if pictures_dir:
            draw_attention(os.path.join(pictures_dir, f"{clip.video_id}.png"), prediction["attention"].numpy(),
                           prediction["caption"], clip.frames, f"{clip.video_id}: {prediction['caption']}")
        predictions.append(prediction)
    return predictions, failed
