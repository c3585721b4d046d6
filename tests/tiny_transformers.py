"""Tiny random-weight CLIP and VideoMAE models, saved as their published repositories are laid out
(config.json, model.safetensors, preprocessor_config.json), for tests that cannot download.

CLIP is saved whole (text tower too), as openai/clip-vit-* are, so loading the vision tower alone
is tested; the CLIP preprocessor config uses the old integer sizes of those repositories, the
VideoMAE one the newer {shortest_edge} form. Frames are 32 pixels: seconds on a CPU.
"""
from __future__ import annotations

import json
import os

import torch

SIZE = 32
CLIP_PROJECTED, CLIP_POOLED, VIDEOMAE_D, VIDEOMAE_FRAMES = 16, 24, 20, 4

CLIP_PREPROCESSOR = {"crop_size": SIZE, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                     "feature_extractor_type": "CLIPFeatureExtractor",
                     "image_mean": [0.48145466, 0.4578275, 0.40821073],
                     "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": SIZE}
VIDEOMAE_PREPROCESSOR = {"crop_size": {"height": SIZE, "width": SIZE}, "do_center_crop": True,
                         "do_normalize": True, "do_rescale": True, "do_resize": True,
                         "image_mean": [0.485, 0.456, 0.406],
                         "image_processor_type": "VideoMAEImageProcessor",
                         "image_std": [0.229, 0.224, 0.225], "resample": 2,
                         "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": SIZE}}


def _save(model, preprocessor: dict, folder: str) -> str:
    model.save_pretrained(folder)
    with open(os.path.join(folder, "preprocessor_config.json"), "w", encoding="utf-8") as handle:
        json.dump(preprocessor, handle)
    return folder


def save_tiny_clip(folder: str, seed: int = 0) -> str:
    import transformers
    torch.manual_seed(seed)
    tower = dict(hidden_size=CLIP_POOLED, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                 projection_dim=CLIP_PROJECTED)
    config = transformers.CLIPConfig(
        text_config=dict(tower, vocab_size=99, max_position_embeddings=16, pad_token_id=0, bos_token_id=1,
                         eos_token_id=2),
        vision_config=dict(tower, image_size=SIZE, patch_size=8), projection_dim=CLIP_PROJECTED)
    return _save(transformers.CLIPModel(config), CLIP_PREPROCESSOR, folder)


def save_tiny_videomae(folder: str, seed: int = 0) -> str:
    import transformers
    torch.manual_seed(seed)
    config = transformers.VideoMAEConfig(image_size=SIZE, patch_size=8, num_frames=VIDEOMAE_FRAMES,
                                         tubelet_size=2, hidden_size=VIDEOMAE_D, num_hidden_layers=2,
                                         num_attention_heads=4, intermediate_size=37, num_labels=7,
                                         use_mean_pooling=True)
    return _save(transformers.VideoMAEForVideoClassification(config), VIDEOMAE_PREPROCESSOR, folder)
