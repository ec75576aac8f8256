"""The resize before the Inception network, which changes FID (Parmar et al. 2022, "On
Aliased Resizing and Surprising Subtleties in GAN Evaluation").

- ``legacy``: the TensorFlow 1.x bilinear resize (no antialiasing) of the uint8 images, as the
  original FID code and torch-fidelity do it (torch-fidelity's tensor implementation).
- ``clean``: clean-fid's resize: each channel of the uint8 image, as a float32 PIL image
  (mode ``F``), resized with PIL's bicubic filter (antialiased) and clipped to [0, 255], kept
  in float (not quantised again).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

RESIZES = ("legacy", "clean")

DESCRIPTIONS = {
    "legacy": "uint8, then bilinear to 299x299 (TensorFlow 1.x compatible, torch-fidelity)",
    "clean": "uint8, then PIL bicubic per channel in float32 to 299x299 (clean-fid)",
}


def clean_resize(pixels: Tensor, size: int = 299) -> Tensor:
    """clean-fid's resize of uint8 ``(N, C, H, W)`` to float32 ``(N, C, size, size)`` in
    [0, 255]: PIL bicubic on each channel as a float image (``make_resizer("PIL", False,
    "bicubic", (size, size))`` in clean-fid)."""
    from PIL import Image

    array = pixels.detach().cpu().numpy().astype(np.float32)
    out = np.empty((*array.shape[:2], size, size), dtype=np.float32)
    for i, image in enumerate(array):
        for c, channel in enumerate(image):
            resized = Image.fromarray(channel).resize(
                (size, size), resample=Image.Resampling.BICUBIC)
            out[i, c] = np.asarray(resized, dtype=np.float32).clip(0, 255)
    return torch.from_numpy(out).to(pixels.device)
