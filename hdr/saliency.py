"""Which pixels made the model choose its digit: integrated gradients and a heat-map overlay."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from hdr.model import DigitNet

DISPLAY_SIZE = 224  # 28 × 8: every model pixel becomes an 8×8 block


def integrated_gradients(model: DigitNet, model_inputs: Sequence[np.ndarray], targets: Sequence[int],
                         steps: int = 16) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) of each target logit, from a blank baseline.

    The logits explained are the mean over all of the model's members (:meth:`DigitNet.mean_logits`): an ensemble
    answers sure images with its first member alone, and integrated gradients need one smooth function.

    ``model_inputs`` are 28×28 arrays in [0, 1] (ink high); returns an N×28×28 float32 array whose
    positive values mark ink that speaks for the target digit and negative values ink that speaks
    against it. All images and all interpolation steps go through the model in one batch.
    """
    if len(model_inputs) == 0:
        return np.zeros((0, 28, 28), np.float32)
    images = torch.from_numpy(np.stack(model_inputs).astype(np.float32)).unsqueeze(1)  # N×1×28×28
    # Midpoint Riemann sum over the straight path from the all-zero (blank) image to the input.
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    path = (alphas.view(steps, 1, 1, 1, 1) * images.unsqueeze(0)).reshape(-1, 1, 28, 28)
    path.requires_grad_(True)
    target_index = torch.tensor(list(targets)).repeat(steps)
    with torch.enable_grad():
        logits = model.mean_logits(path)
        chosen = logits.gather(1, target_index.unsqueeze(1)).sum()
        (gradients,) = torch.autograd.grad(chosen, path)  # no parameter .grad is touched
    mean_gradient = gradients.reshape(steps, *images.shape).mean(0)
    return (images * mean_gradient).squeeze(1).numpy()


def upscale(model_input: np.ndarray, size: int = DISPLAY_SIZE) -> Image.Image:
    """The 28×28 model input as a grayscale picture (white ink on black), enlarged with nearest."""
    pixels = (np.clip(model_input, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST)


def overlay(model_input: np.ndarray, attribution: np.ndarray, size: int = DISPLAY_SIZE) -> Image.Image:
    """Heat-map over the dimmed model input: red = evidence for the digit, blue = against it."""
    scale = float(np.abs(attribution).max()) or 1.0
    strength = np.clip(attribution / scale, -1, 1)
    base = np.clip(model_input, 0, 1) * 0.45  # dim the digit so the colours stand out
    red = base + np.clip(strength, 0, 1) * (1 - base)
    blue = base + np.clip(-strength, 0, 1) * (1 - base)
    green = base * (1 - np.abs(strength))
    pixels = (np.stack([red, green, blue], axis=-1) * 255).round().astype(np.uint8)
    return Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST)
