"""The digit classifier network, saved and loaded in the Hugging Face format."""
from __future__ import annotations

from pathlib import Path

import safetensors.torch
import torch
from huggingface_hub import PyTorchModelHubMixin, constants
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


class DigitCNN(nn.Module):
    """One convolutional network: a batch of normalised 28×28 images (B×1×28×28) to B×``num_classes`` logits."""

    def __init__(self, widths: list[int], dropout: float, num_classes: int):
        super().__init__()
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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))


class DigitNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="hdr",
    tags=["image-classification", "handwritten-digits", "mnist", "pytorch"],
    license="mit",
    pipeline_tag="image-classification",
    model_card_template=(Path(__file__).parent / "model_card.md").read_text(),
):
    """The digit classifier: one :class:`DigitCNN`, or an ensemble of ``members`` of them (see :meth:`forward`),
    mapping a batch of 28×28 MNIST-style images (ink 1.0 on 0.0, shape B×1×28×28) to 10 logits.

    ``temperature`` (calibration), ``min_confidence`` (below it a prediction is flagged as unsure) and
    ``min_evidence`` (below it an image is flagged as maybe not a digit; see :meth:`evidence`) are fitted
    after training on the validation split and travel in ``config.json``, like ``escalate_below``.
    """

    def __init__(
        self,
        widths: tuple[int, ...] | list[int] = (32, 64, 128),
        dropout: float = 0.3,
        num_classes: int = 10,
        temperature: float = 1.0,
        min_confidence: float = 0.5,
        min_evidence: float | None = None,
        members: int = 1,
        escalate_below: float | None = None,
    ):
        super().__init__()
        self.widths, self.dropout = list(widths), dropout
        self.members = nn.ModuleList(DigitCNN(self.widths, dropout, num_classes) for _ in range(members))
        self.temperature = temperature
        self.min_confidence = min_confidence
        self.min_evidence = min_evidence
        self.escalate_below = escalate_below

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw logits (not divided by the temperature).

        An ensemble averages the logits of its members, but only where it helps: when ``escalate_below`` is set,
        an image the first member already classifies with a top softmax probability of at least
        ``escalate_below`` keeps that member's logits, so most images cost one network. ``None``: always all members.
        """
        if len(self.members) == 1 or self.escalate_below is None:
            return self.mean_logits(images)
        normalised = (images - MNIST_MEAN) / MNIST_STD
        logits = self.members[0](normalised)
        hard = logits.float().softmax(-1).max(-1).values < self.escalate_below
        if not hard.any():
            return logits
        others = [member(normalised[hard]) for member in self.members[1:]]
        return logits.index_put((hard,), torch.stack([logits[hard], *others]).mean(0))

    def mean_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The mean of all members' raw logits (one member: its logits). Unlike :meth:`forward` with
        ``escalate_below``, a smooth function of the image, as integrated gradients need."""
        return self.member_logits(images).mean(0)

    def member_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Each member's raw logits: members × B × classes."""
        normalised = (images - MNIST_MEAN) / MNIST_STD
        return torch.stack([member(normalised) for member in self.members])

    def stored_state(self) -> dict[str, torch.Tensor]:
        """The weights as saved: floating-point tensors in float16, which halves the file (an ensemble of five
        networks: 3.3 MB) and changed no MNIST validation or test prediction of the shipped model."""
        return {name: (value.half() if value.is_floating_point() else value).contiguous()
                for name, value in self.state_dict().items()}

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write ``model.safetensors`` from :meth:`stored_state` (``save_pretrained`` calls this)."""
        safetensors.torch.save_file(self.stored_state(), str(Path(save_directory) / constants.SAFETENSORS_SINGLE_FILE))

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
