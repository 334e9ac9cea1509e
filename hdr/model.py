"""The digit classifier network, saved and loaded in the Hugging Face format."""
from __future__ import annotations

from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from hdr import calibration

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3×3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DigitNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="hdr",
    tags=["image-classification", "handwritten-digits", "mnist", "pytorch"],
    license="mit",
    pipeline_tag="image-classification",
    model_card_template=(Path(__file__).parent / "model_card.md").read_text(),
):
    """CNN mapping a batch of 28×28 MNIST-style images (ink 1.0 on 0.0, shape B×1×28×28) to 10 logits.

    ``temperature`` (calibration), ``min_confidence`` (below it a prediction is flagged as unsure) and
    ``min_evidence`` (below it an image is flagged as maybe not a digit; see :meth:`evidence`) are fitted
    after training on the validation split and travel in ``config.json``.
    """

    def __init__(
        self,
        widths: tuple[int, ...] | list[int] = (32, 64, 128),
        dropout: float = 0.3,
        num_classes: int = 10,
        temperature: float = 1.0,
        min_confidence: float = 0.5,
        min_evidence: float | None = None,
    ):
        super().__init__()
        widths = list(widths)
        layers, channels = [], 1
        for width in widths[:-1]:  # each stage halves the resolution with a strided convolution
            layers += [conv_bn_relu(channels, width), conv_bn_relu(width, width, stride=2)]
            channels = width
        layers += [conv_bn_relu(channels, widths[-1]), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        side = 28 // 2 ** len(widths)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(widths[-1] * side * side, num_classes)
        )
        self.temperature = temperature
        self.min_confidence = min_confidence
        self.min_evidence = min_evidence

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw logits (not divided by the temperature)."""
        return self.classifier(self.features((images - MNIST_MEAN) / MNIST_STD))

    def calibrated_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities from this model's logits, with the fitted temperature applied."""
        return calibration.calibrated_probabilities(logits, self.temperature)

    def evidence(self, logits: torch.Tensor) -> torch.Tensor:
        """How strongly an input looks like any digit at all (see :func:`hdr.calibration.evidence`)."""
        return calibration.evidence(logits, self.temperature)

    def is_unsure(self, logits: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
        """True where a prediction should be flagged, from its logits and calibrated probabilities: confidence
        below ``min_confidence`` or evidence below ``min_evidence`` (models exported before it was fitted have none)."""
        unsure = probabilities.max(-1).values < self.min_confidence
        if self.min_evidence is not None:
            unsure |= self.evidence(logits) < self.min_evidence
        return unsure
