"""Any torchvision image classifier as a feature extractor, with weights from a local file only."""
from __future__ import annotations

from torch import nn

from extraction.weights import load_state_dict
from utils import DataError

# The published weights of these two were trained on inputs transform_input rescales, and they
# carry auxiliary classifiers that evaluation never runs; inception_v3 wants 299 x 299 crops.
_BUILD_OPTIONS = {
    "googlenet": {"transform_input": True, "aux_logits": True, "init_weights": False},
    "inception_v3": {"transform_input": True, "aux_logits": True, "init_weights": False},
}
_CROP = {"inception_v3": (342, 299)}
_AUXILIARY = ("aux1.", "aux2.", "AuxLogits.")


def import_torchvision():
    try:
        import torchvision
        import torchvision.models  # noqa: F401  (a mismatched build fails here)
    except Exception as error:  # ImportError, or RuntimeError from a build for another torch
        import torch
        raise DataError(
            f"this backbone needs torchvision, which cannot be imported ({type(error).__name__}: "
            f"{error}). Install the torchvision release made for your torch {torch.__version__}: "
            "pip install torchvision==<matching version> (torchvision's README has the table of "
            "matching versions). The default backbone "
            "EfficientNetLite0 needs no torchvision.") from None
    return torchvision


def classifier_names() -> list:
    models = import_torchvision().models
    return sorted(models.list_models(module=models))


def crop_sizes(model_name: str) -> tuple:
    return _CROP.get(model_name, (256, 224))


def build_classifier_features(model_name: str, weights: str, display_name: str) -> nn.Module:
    names = classifier_names()
    if model_name not in names:
        raise DataError(f"{model_name} is not a torchvision image classifier; choose one of "
                        f"{', '.join(names)}")
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
