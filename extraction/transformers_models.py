"""CLIP's vision tower and VideoMAE from transformers (imported only when one is built), with the
preprocessing their preprocessor_config.json states; weights: docs/features.md."""
from __future__ import annotations

import os
import socket
import urllib.parse

import torch
from torch import nn

from extraction.preprocess import Preprocess
from utils import DataError, read_json

INSTALL_HINT = 'pip install "transformers>=5,<6" (it is in requirements.txt)'
# preprocessor_config.json's `resample` (PIL's numbering) -> libswscale's filter of the same kind.
RESAMPLE_TO_SWSCALE = {0: "POINT", 1: "LANCZOS", 2: "BILINEAR", 3: "BICUBIC", 4: "AREA", 5: "BICUBIC"}


def import_transformers():
    try:
        import transformers
    except ImportError as error:
        raise DataError(f"the CLIP and VideoMAE backbones need transformers ({error}): "
                        f"{INSTALL_HINT}") from None
    transformers.utils.logging.set_verbosity_error()      # its loading reports would hide the progress bar
    transformers.utils.logging.disable_progress_bar()
    return transformers


def check_weights(weights: str, backbone: str) -> None:
    """weights as given: an existing folder, or a Hugging Face id (owner/name)."""
    if not os.path.isdir(weights) and (os.path.exists(weights) or weights.startswith((".", "/", "~"))
                                       or weights.count("/") != 1):
        raise DataError(f"--weights {weights} for {backbone} is neither a folder nor a Hugging Face "
                        "model id (owner/name): give the folder that holds config.json, the weights "
                        "and preprocessor_config.json, or the id")


def not_available(weights: str, backbone: str, error: Exception) -> DataError:
    why = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    if os.path.isdir(weights):
        return DataError(f"cannot load the {backbone} weights from the folder {weights} ({why}); it "
                         "must hold what `save_pretrained` or `hf download` writes: "
                         "config.json, model.safetensors (or pytorch_model.bin), preprocessor_config.json")
    return DataError(f"cannot load the {backbone} weights {weights!r} ({why}): no folder {weights} is here, and "
                     "the Hugging Face id is neither in the cache nor downloadable. With no network here, download "
                     f"them on a machine that has one: `hf download {weights} --local-dir {weights.split('/')[-1]}`, "
                     "copy that folder here and give it as --weights FOLDER (or point HF_HOME at a Hugging Face "
                     f"cache that holds {weights}; HF_HUB_OFFLINE=1 skips the network attempts)")


def offline_unless_reachable(timeout: float = 3.0) -> None:
    """No network: go offline at once (the cache only) rather than after transformers' retries."""
    import huggingface_hub.constants as hub
    if hub.HF_HUB_OFFLINE:
        return
    host = urllib.parse.urlparse(hub.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = "1"
        hub.HF_HUB_OFFLINE = True


def _read_json(weights: str, filename: str, backbone: str) -> dict:
    transformers = import_transformers()
    check_weights(weights, backbone)
    if not os.path.isdir(weights):
        offline_unless_reachable()
    try:
        path = transformers.utils.cached_file(weights, filename)
    except (OSError, ValueError) as error:
        raise not_available(weights, backbone, error) from None
    return read_json(path, "", f"of the {backbone} weights is not readable JSON")


def _edge(value, field: str, path: str) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, dict) and "shortest_edge" in value:
        return int(value["shortest_edge"])
    if isinstance(value, dict) and value.get("height") == value.get("width") and "height" in value:
        return int(value["height"])
    raise DataError(f"{path}: {field} {value!r} is not a shortest edge or a square; only "
                    "aspect-keeping resizes and square crops are supported")


def read_preprocessing(weights: str, backbone: str) -> tuple:
    """(Preprocess, libswscale filter name)."""
    config = _read_json(weights, "preprocessor_config.json", backbone)
    where = f"preprocessor_config.json of {weights}"
    resize = _edge(config.get("size", 224), "size", where) if config.get("do_resize", True) else None
    crop = (_edge(config.get("crop_size", resize), "crop_size", where)
            if config.get("do_center_crop", True) else resize)
    if resize is None or crop is None:
        raise DataError(f"{where}: frames need a resize (do_resize) to one size")
    scale = float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else 1.0
    mean = config.get("image_mean", [0.0] * 3) if config.get("do_normalize", True) else [0.0] * 3
    std = config.get("image_std", [1.0] * 3) if config.get("do_normalize", True) else [1.0] * 3
    # (x * scale - mean) / std == (x - mean / scale) / (std / scale), in the 0..255 units of frames
    return Preprocess(resize, crop, tuple(m / scale for m in mean), tuple(s / scale for s in std),
                      crop_offset="floor"), RESAMPLE_TO_SWSCALE.get(int(config.get("resample", 3)), "BICUBIC")


def _load(model_class, weights: str, backbone: str, model_types: tuple) -> nn.Module:
    config = _read_json(weights, "config.json", backbone)
    if config.get("model_type") not in model_types:
        raise DataError(f"the weights {weights} are a {config.get('model_type')!r} model, not one "
                        f"{backbone} reads ({', '.join(model_types)})")
    try:
        network, info = model_class.from_pretrained(weights, output_loading_info=True)
    except (OSError, ValueError) as error:
        raise not_available(weights, backbone, error) from None
    except RuntimeError as error:   # tensors of the wrong shape
        raise DataError(f"the weights {weights} do not fit {backbone}: "
                        f"{str(error).splitlines()[0]}") from None
    except Exception as error:      # safetensors' own error for a damaged file derives from Exception only
        if type(error).__name__ != "SafetensorError":
            raise
        raise DataError(f"the {backbone} weights in {weights} are damaged (SafetensorError: {error}): "
                        "download them again (model.safetensors)") from None
    if missing := sorted(info.get("missing_keys") or []):
        raise DataError(f"the weights {weights} lack {len(missing)} tensors {backbone} needs "
                        f"(e.g. {missing[:3]}); are they the weights of this very architecture?")
    return network


class ClipImageFeatures(nn.Module):
    """(n, 3, S, S) -> (n, D), the projected image embedding or the pooled output."""

    def __init__(self, tower: nn.Module, projection: bool):
        super().__init__()
        self.tower, self.projection, self.clip_length = tower, projection, 1
        self.feature_size = tower.config.projection_dim if projection else tower.config.hidden_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        output = self.tower(pixel_values=images)
        return output.image_embeds if self.projection else output.pooler_output


def build_clip(weights: str, backbone: str, projection: bool) -> ClipImageFeatures:
    transformers = import_transformers()
    model_class = transformers.CLIPVisionModelWithProjection if projection else transformers.CLIPVisionModel
    return ClipImageFeatures(_load(model_class, weights, backbone, ("clip", "clip_vision_model")), projection)


class VideoMAEFeatures(nn.Module):
    """(n, T, 3, S, S) clips -> (n, D), what its classifier reads (the normed mean of the patch tokens)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        classifier.classifier = nn.Identity()
        self.classifier = classifier
        self.feature_size, self.clip_length = classifier.config.hidden_size, classifier.config.num_frames

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.classifier(pixel_values=clips).logits


def build_videomae(weights: str, backbone: str) -> VideoMAEFeatures:
    return VideoMAEFeatures(_load(import_transformers().VideoMAEForVideoClassification, weights, backbone,
                                  ("videomae",)))
