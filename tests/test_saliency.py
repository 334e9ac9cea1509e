"""Saliency maps (hdr/saliency.py) on a real model and real MNIST digits."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hdr.saliency import DISPLAY_SIZE, integrated_gradients, overlay, upscale


@pytest.fixture(scope="module")
def inputs(mnist_test):
    images, labels = mnist_test
    return [image.astype(np.float32) / 255 for image in images[:6]], labels[:6].tolist()


def test_attributions_add_up_to_the_change_of_the_logit(recognizer, inputs):
    """Completeness: the attributions of an image sum to logit(image) − logit(blank), for the mean logits of the
    shipped ensemble's members."""
    model_inputs, labels = inputs
    maps = integrated_gradients(recognizer.model, model_inputs, labels, steps=64)
    with torch.no_grad():
        logits = recognizer.model.mean_logits(torch.from_numpy(np.stack(model_inputs)).unsqueeze(1))
        blank = recognizer.model.mean_logits(torch.zeros(1, 1, 28, 28))[0]
    expected = (logits[range(len(labels)), labels] - blank[labels]).numpy()
    assert maps.shape == (len(labels), 28, 28)
    assert maps.reshape(len(labels), -1).sum(1) == pytest.approx(expected, rel=0.05, abs=0.05)
    assert np.all(maps[np.stack(model_inputs) == 0] == 0)  # no ink, no attribution from a blank baseline


def test_the_pictures_are_enlarged_model_inputs(inputs):
    model_input = inputs[0][0]
    picture = upscale(model_input)
    assert picture.size == (DISPLAY_SIZE, DISPLAY_SIZE)
    block = DISPLAY_SIZE // 28
    assert np.array_equal(np.asarray(picture)[::block, ::block], np.round(model_input * 255).astype(np.uint8))
    heat = np.asarray(overlay(model_input, np.where(model_input > 0.5, 1.0, -1.0) * model_input))
    assert heat.shape == (DISPLAY_SIZE, DISPLAY_SIZE, 3)
    strong = np.kron(model_input > 0.5, np.ones((block, block), bool))
    assert (heat[strong][:, 0] > heat[strong][:, 2]).all()  # evidence for the digit is red


def test_no_inputs_no_maps(recognizer):
    assert integrated_gradients(recognizer.model, [], []).shape == (0, 28, 28)
