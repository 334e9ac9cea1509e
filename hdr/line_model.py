"""The line reader network: a strip of handwritten number → per-column character probabilities (CTC)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from hdr.model import conv_bn_relu

ALPHABET = "0123456789.,-"  # CTC class 0 is the blank; class i + 1 is ALPHABET[i]
STRIP_HEIGHT = 32
FRAME_WIDTH = 4  # strip columns per output frame


def context_block(channels: int, dilation: int) -> nn.Sequential:
    """A 1-D convolution along the line that widens what each frame sees."""
    return nn.Sequential(
        nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm1d(channels),
        nn.ReLU(inplace=True),
    )


class LineNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="hdr",
    tags=["handwritten-digits", "ctc", "mnist", "pytorch"],
    license="mit",
    model_card_template=(Path(__file__).parent / "line_model_card.md").read_text(),
):
    """Fully convolutional CTC reader of B×1×32×W strips (ink 1.0 on 0.0, digits ~20 px high).

    Returns B×(W/4)×(1 + len(ALPHABET)) logits. ``min_confidence`` (below it a character is flagged
    unsure) and ``peak_offset`` (where the reader's peak for a digit falls, from the digit's centre, in digit
    heights: CTC does not say where in a character it fires) are fitted after training and travel in
    ``config.json``.
    """

    def __init__(self, widths: tuple[int, ...] | list[int] = (32, 64, 128), context: int = 128,
                 dropout: float = 0.2, min_confidence: float = 0.5, peak_offset: float = 0.0):
        super().__init__()
        first, second, third = widths
        self.features = nn.Sequential(
            conv_bn_relu(1, first), conv_bn_relu(first, first, stride=2),  # 16 × W/2
            conv_bn_relu(first, second), conv_bn_relu(second, second, stride=2),  # 8 × W/4
            conv_bn_relu(second, third), conv_bn_relu(third, third, stride=(2, 1)),  # 4 × W/4
            nn.Conv2d(third, context, (STRIP_HEIGHT // 8, 1), bias=False),  # 1 × W/4
            nn.BatchNorm2d(context),
            nn.ReLU(inplace=True),
        )
        self.context = nn.Sequential(context_block(context, 1), context_block(context, 2), context_block(context, 4))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Conv1d(context, 1 + len(ALPHABET), 1))
        self.min_confidence = min_confidence
        self.peak_offset = peak_offset

    def forward(self, strips: torch.Tensor) -> torch.Tensor:
        frames = self.features(strips).squeeze(2)
        return self.head(frames + self.context(frames)).transpose(1, 2)


@dataclass
class Character:
    """One decoded character: which, how sure, where its probability peaks, and what digit it could be."""

    char: str
    confidence: float  # its highest probability over the frames it was decoded from
    peak_frame: int
    digit_probabilities: np.ndarray  # the ten digits' probabilities at the peak, normalised to sum to 1


def decode(probabilities: torch.Tensor) -> list[Character]:
    """Greedy CTC decoding of one line's T×C probabilities: best class per frame, repeats merged, blanks dropped."""
    best = probabilities.argmax(-1).tolist()
    characters: list[Character] = []
    frame = 0
    while frame < len(best):
        label, end = best[frame], frame
        while end + 1 < len(best) and best[end + 1] == label:
            end += 1
        if label != 0:
            run = probabilities[frame : end + 1, label]
            peak = frame + int(run.argmax())
            digits = probabilities[peak, 1:11].double().numpy()
            characters.append(Character(ALPHABET[label - 1], float(run.max()), peak, digits / digits.sum()))
        frame = end + 1
    return characters
