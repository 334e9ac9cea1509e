"""Batch augmentation: redrawing strokes with an even pen."""
from __future__ import annotations

import dataclasses

import torch

from hdr.augment import Augmentation, pen_strokes, skeleton


def wedge() -> torch.Tensor:
    """A 1×1×28×28 horizontal stroke that swells from 1 px thick on the left to 7 px on the right."""
    image = torch.zeros(1, 1, 28, 28)
    for column in range(4, 24):
        half = 0.5 + 3 * (column - 4) / 19
        rows = torch.arange(28).float() + 0.5
        image[0, 0, :, column] = (half + 0.5 - (rows - 14).abs()).clamp(0, 1)
    return image


def test_skeleton_of_a_thick_stroke_is_one_pixel_wide():
    centre_line = skeleton(wedge() > 0.5)
    thickness = centre_line[0, 0].sum(0)
    assert (thickness[6:20] == 1).all()  # (thinning also shortens the thick end a little)


def test_pen_strokes_even_out_a_stroke_that_swells():
    stroke = wedge()
    thickness = stroke[0, 0].sum(0)
    assert thickness[22] - thickness[5] > 4  # the writer's stroke swells
    redrawn = pen_strokes(stroke, torch.tensor([1.0]))[0, 0].sum(0)
    assert (redrawn[6:22] - 2.0).abs().max() < 0.75  # a pen of radius 1: about 2 px everywhere
    wider = pen_strokes(stroke, torch.tensor([1.5]))[0, 0].sum(0)
    assert (wider[6:22] - redrawn[6:22]).mean() > 0.5


def test_augmentation_redraws_the_chosen_share_of_a_batch():
    batch = wedge().repeat(64, 1, 1, 1)
    still = Augmentation(rotation_degrees=0, scale=(1, 1), aspect=0, shear=0, translate_pixels=0, elastic_pixels=0,
                         thicken_probability=0, thin_probability=0)
    assert torch.allclose(still(batch), batch, atol=1e-5)
    redrawn = dataclasses.replace(still, pen_probability=1.0)(batch)
    assert (redrawn - batch).abs().amax((1, 2, 3)).min() > 0.3  # every image redrawn
