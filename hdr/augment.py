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
    pen_probability: float = 0.0
    pen_radius: tuple[float, float] = (0.5, 1.5)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        device = images.device
        images = self._redraw_with_pen(images)
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

    def _redraw_with_pen(self, images: torch.Tensor) -> torch.Tensor:
        """Redraw a random subset of the batch (``pen_probability``) with an even, round pen along the centre
        lines of its strokes, as a drawing app or a felt pen writes: MNIST's strokes swell and taper."""
        chosen = torch.rand(images.shape[0], device=images.device) < self.pen_probability
        if not chosen.any():
            return images
        radius = torch.empty(int(chosen.sum()), device=images.device).uniform_(*self.pen_radius)
        return images.index_put((chosen,), pen_strokes(images[chosen], radius))


def pen_strokes(images: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """B×1×H×W strokes redrawn along their centre lines with a pen of ``radius`` pixels (one per image), drawn at
    twice the resolution and averaged down, so the edges are anti-aliased like MNIST's."""
    centre_lines = skeleton(F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False) > 0.5)
    ink = pen = centre_lines.float()
    steps = 2 * radius.view(-1, 1, 1, 1)  # the pen's radius in drawing pixels
    for step in range(1, math.ceil(float(steps.max())) + 1):
        # Alternating square and cross neighbourhoods grow an octagon, close to a round pen.
        grown = F.max_pool2d(ink, 3, stride=1, padding=1) if step % 2 else _grow_cross(ink)
        # Each step inks a new ring; the last one only partly, for radii between whole pixels.
        pen = pen + (grown - ink) * (steps - (step - 1)).clamp(0, 1)
        ink = grown
    return F.avg_pool2d(pen, 2)


def _grow_cross(ink: torch.Tensor) -> torch.Tensor:
    padded = F.pad(ink, (1, 1, 1, 1))
    return torch.stack([ink, padded[..., :-2, 1:-1], padded[..., 2:, 1:-1], padded[..., 1:-1, :-2],
                        padded[..., 1:-1, 2:]]).amax(0)


def skeleton(mask: torch.Tensor) -> torch.Tensor:
    """Zhang–Suen thinning of a B×1×H×W boolean batch to one-pixel-wide centre lines."""
    image = F.pad(mask.float(), (1, 1, 1, 1))
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            n = [image[..., :-2, 1:-1], image[..., :-2, 2:], image[..., 1:-1, 2:], image[..., 2:, 2:],
                 image[..., 2:, 1:-1], image[..., 2:, :-2], image[..., 1:-1, :-2], image[..., :-2, :-2]]
            neighbours = sum(n)
            transitions = sum((1 - n[i]) * n[(i + 1) % 8] for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                keep_rule = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                keep_rule = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = ((image[..., 1:-1, 1:-1] == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1)
                      & keep_rule)
            if remove.any():
                image[..., 1:-1, 1:-1][remove] = 0
                changed = True
    return image[..., 1:-1, 1:-1].bool()
