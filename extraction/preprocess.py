"""From decoded frames (short side already scaled while decoding) to a network's input batch."""
from __future__ import annotations

from dataclasses import dataclass

import torch

# In 0..255 units, the scale the decoded frames come in.
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# Google's EfficientNet-Lite models were trained on (x - 127) / 128 ("inception style", better
# after quantisation; efficientnet_lite_builder.py), not on the ImageNet mean and std.
INCEPTION_MEAN = (127.0, 127.0, 127.0)
INCEPTION_STD = (128.0, 128.0, 128.0)


@dataclass(frozen=True)
class Preprocess:
    resize: int = 256                 # the short side frames are decoded to
    crop: int = 224
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    # Where an odd margin puts the crop: torchvision's CenterCrop rounds half the margin,
    # transformers' image processors take its floor (one pixel apart).
    crop_offset: str = "round"

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """(n, H, W, 3) uint8 with min(H, W) == resize -> (n, 3, crop, crop) float32."""
        height, width = frames.shape[1:3]
        if min(height, width) < self.crop:
            raise ValueError(f"frames of {height}x{width} are smaller than the {self.crop} crop; "
                             f"decode them with short side {self.resize}")
        top, left = (margin // 2 if self.crop_offset == "floor" else int(round(margin / 2.0))
                     for margin in (height - self.crop, width - self.crop))
        batch = frames[:, top:top + self.crop, left:left + self.crop].permute(0, 3, 1, 2).float()
        mean, std = (torch.tensor(values, device=batch.device).view(1, 3, 1, 1) for values in (self.mean, self.std))
        return (batch - mean) / std
