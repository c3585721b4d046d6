"""Frames per second of the transformers backbones at their real sizes, with random weights
(nothing downloaded), preprocessing included and decoding not; docs/speed.md."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

import config as config_module
from bench.timing import Clock, device_description, load_average
from extraction.backbones import BACKBONES, Backbone
from extraction.transformers_models import (ClipImageFeatures, VideoMAEFeatures, import_transformers,
                                            read_preprocessing)
from utils import pick_device

CLIP = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3, "size": 224}
VIDEOMAE = {"crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_normalize": True,
            "do_rescale": True, "do_resize": True, "image_mean": [0.485, 0.456, 0.406],
            "image_std": [0.229, 0.224, 0.225], "resample": 2, "rescale_factor": 1 / 255,
            "size": {"shortest_edge": 224}}
# The vision towers of openai/clip-vit-{base-patch32, base-patch16, large-patch14}.
CLIP_TOWERS = {"ViT-B-32": dict(patch_size=32), "ViT-B-16": dict(patch_size=16),
               "ViT-L-14": dict(patch_size=14, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                num_attention_heads=16, projection_dim=768)}
CLIPS = sorted((Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "videos").glob("*.avi"))


def real_size_network(name: str):
    transformers = import_transformers()
    if name.startswith("CLIP-"):
        tag = name[len("CLIP-"):].removesuffix("-pooled")
        config = transformers.CLIPVisionConfig(image_size=224, **{"projection_dim": 512, **CLIP_TOWERS[tag]})
        projection = not name.endswith("-pooled")
        tower = (transformers.CLIPVisionModelWithProjection if projection else transformers.CLIPVisionModel)(config)
        return ClipImageFeatures(tower, projection), CLIP
    config = transformers.VideoMAEConfig(num_labels=400, use_mean_pooling=True)   # ViT-B, 16 frames, 224
    return VideoMAEFeatures(transformers.VideoMAEForVideoClassification(config)), VIDEOMAE


def measure(name: str, device: torch.device, frames: int, batches: int) -> dict:
    network, preprocessor = real_size_network(name)
    with tempfile.TemporaryDirectory() as folder:          # the preprocessing read as the real backbone's
        with open(os.path.join(folder, "preprocessor_config.json"), "w", encoding="utf-8") as handle:
            json.dump(preprocessor, handle)
        preprocess, interpolation = read_preprocessing(folder, name)
    spec = BACKBONES[name]
    model = Backbone(name, network, network.feature_size, preprocess, device, interpolation,
                     network.clip_length, spec.clip_stride, "random weights", spec.output)
    sampled = model.read(str(CLIPS[0]), every_n=1)         # 120 frame positions of one real clip
    batch = frames * model.clip_length                     # Backbone counts a clip's frames

    def take(start: int):
        end = start + frames
        return replace(sampled, frames=sampled.frames[start:end], indices=sampled.indices[start:end],
                       windows=None if sampled.windows is None else sampled.windows[start:end])
    model.features(take(0), batch)                         # warm-up
    clock = Clock(device)
    seconds = sum(clock(model.features, take((i + 1) * frames % 100), batch)[0]
                  for i in range(batches))
    return {"backbone": name, "D": model.feature_size, "frames_per_batch": frames,
            "frames_per_second": round(frames * batches / seconds, 2)}


def main(argv=None) -> int:
    parser = config_module.argument_parser(__doc__, prog="python -m extraction.speed")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--frames", type=int, default=8, help="frame positions a batch (default 8)")
    parser.add_argument("--batches", type=int, default=2, help="timed batches (default 2)")
    parser.add_argument("--names", default=",".join(name for name, spec in BACKBONES.items()
                                                    if spec.build and not name.endswith("-pooled")),
                        help="comma-separated backbones (default: every transformers architecture; a "
                             "-pooled variant costs what its projected one does)")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    torch.manual_seed(0)
    print(f"{device_description(device)}, torch {torch.__version__}, transformers "   # stdout: JSON lines only
          f"{import_transformers().__version__}, {torch.get_num_threads()} threads, load {load_average()}",
          file=sys.stderr, flush=True)
    for name in args.names.split(","):
        with torch.inference_mode():
            result = measure(name, device, args.frames, args.batches)
        print(json.dumps(result), flush=True)
    print(f"load average at the end {load_average()}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
