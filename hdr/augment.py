"""Batch augmentation on tensors, aimed at the ways real handwriting differs from MNIST.

Everything works on a whole batch at once (one ``affine_grid`` + ``grid_sample``), which is
far faster than per-sample PIL transforms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Augmentation:
    """Random distortion of a batch of B×1×H×W images (ink high, background 0)."""

    rotation_degrees: float = 12.0
    scale: tuple[float, float] = (0.85, 1.1)
    aspect: float = 0.1
    shear: float = 0.2
    translate_pixels: float = 2.5
    elastic_pixels: float = 0.7
    elastic_grid: int = 4
    thicken_probability: float = 0.15
    thin_probability: float = 0.1

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        device = images.device
        grid = F.affine_grid(self._random_affine(batch, height, device), list(images.shape), align_corners=False)
        grid = grid + self._elastic_offsets(batch, height, width, device)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return self._change_stroke_width(images)

    def _random_affine(self, batch: int, side: int, device: torch.device) -> torch.Tensor:
        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.empty(batch, device=device).uniform_(low, high)

        angle = uniform(-1, 1) * math.radians(self.rotation_degrees)
        scale = uniform(*self.scale)
        aspect = 1 + uniform(-self.aspect, self.aspect)
        shear = uniform(-self.shear, self.shear)
        shift = torch.empty(batch, 2, device=device).uniform_(-1, 1) * (2 * self.translate_pixels / side)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # affine_grid maps output coordinates to input ones, so the inverse scale zooms in.
        sx, sy = 1 / (scale * aspect), aspect / scale
        theta = torch.zeros(batch, 2, 3, device=device)
        theta[:, 0, 0] = sx * cos
        theta[:, 0, 1] = sx * (-sin + shear * cos)
        theta[:, 1, 0] = sy * sin
        theta[:, 1, 1] = sy * (cos + shear * sin)
        theta[:, :, 2] = shift
        return theta

    def _elastic_offsets(self, batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        """A smooth random displacement field (in grid units), as in Simard et al. 2003."""
        if self.elastic_pixels <= 0:
            return torch.zeros(1, device=device)
        coarse = torch.randn(batch, 2, self.elastic_grid, self.elastic_grid, device=device)
        field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
        field = field * (2 * self.elastic_pixels / max(height, width))
        return field.permute(0, 2, 3, 1)

    def _change_stroke_width(self, images: torch.Tensor) -> torch.Tensor:
        """Thicken (dilate) or thin (erode) the strokes of a random subset of the batch."""
        roll = torch.rand(images.shape[0], 1, 1, 1, device=images.device)
        thick = F.max_pool2d(images, 3, stride=1, padding=1)
        # A full 3×3 erosion erases MNIST's 2-pixel strokes, so thinning only goes half way.
        thin = (images - F.max_pool2d(-images, 3, stride=1, padding=1)) / 2
        images = torch.where(roll < self.thicken_probability, thick, images)
        return torch.where(roll > 1 - self.thin_probability, thin, images)
