"""LightningDataModule of synthetic handwritten numbers for the line reader.

Each sample is a random number (1–10 digits, sometimes with ``. , -`` or spaces between groups) written
with MNIST digits in a random style (spacing from spaced to overlapping, size, drift, broken strokes,
underline), each digit distorted like the classifier's training digits, then turned into a strip by
the same :func:`hdr.lines.line_strip` used at inference. Training numbers use the training split's
digits, validation numbers the held-out validation digits (the same seeded split as the classifier's).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from hdr import mnist
from hdr.augment import Augmentation
from hdr.line_model import ALPHABET
from hdr.lines import STRIP_DIGIT_HEIGHT, Strip, line_strip, strip_of
from hdr.preprocess import BlankImageError
from hdr.reader import ink_lines_of
from hdr.synthetic import (DIGIT_HEIGHT, IMAGE_KINDS, SPACINGS, DigitPool, LineStyle, add_underline, crop_to_ink,
                           ink_image, render_line)

SPACING_WEIGHTS = (0.15, 0.2, 0.25, 0.2, 0.2)  # of SPACINGS
BROKEN_SHARE = 0.25  # of the numbers, written with some of their digits broken
SEPARATORS = ".,- "


def random_number(rng: np.random.Generator) -> str:
    """Digits, and in a third of the numbers separators between groups of 1–4 digits."""
    if rng.random() < 0.66:
        return "".join(map(str, rng.integers(0, 10, size=rng.integers(1, 11))))
    groups = ["".join(map(str, rng.integers(0, 10, size=rng.integers(1, 5)))) for _ in range(rng.integers(2, 4))]
    return "".join(group + SEPARATORS[rng.integers(len(SEPARATORS))] for group in groups[:-1]) + groups[-1]


def random_style(rng: np.random.Generator, spacing_weights: Sequence[float] = SPACING_WEIGHTS,
                 broken_share: float = BROKEN_SHARE) -> LineStyle:
    """A random way of writing a number: its spacing drawn with ``spacing_weights`` (of ``SPACINGS``), broken
    strokes in ``broken_share`` of the numbers. The baseline drifts only between separate digits: the strip
    straightens a line digit by digit, so drift inside a run of touching digits would stay."""
    spacing = SPACINGS[rng.choice(len(SPACINGS), p=np.asarray(spacing_weights) / sum(spacing_weights))]
    drifts = spacing in ("spaced", "normal") and rng.random() < 0.4
    return LineStyle(
        scale=rng.uniform(1.0, 2.5),
        spacing=spacing,
        size_jitter=rng.uniform(0.0, 0.2),
        drift_slope=rng.uniform(-0.08, 0.08) if drifts else 0.0,
        drift_wave=rng.uniform(0, 0.12) if drifts else 0.0,
        broken=0.4 if rng.random() < broken_share else 0.0,
    )


@dataclass
class DrawnNumber:
    """A synthetic number: its text, its strip, and the ink-map column of each digit's centre (``None`` where the
    strip was read back from an image, whose ink map is not the one drawn)."""

    text: str
    strip: Strip
    digit_columns: list[float] | None


class LineDataset(Dataset):
    """``size`` random numbers as (strip, label indices). With a ``seed`` every index always gives the same
    sample (validation); without one, every access draws a new sample (training). ``spacing_weights`` and
    ``broken_share`` are passed to :func:`random_style`. A share ``image_share`` of the numbers is made into an image
    (a scan, a photo or a sketch canvas, at random) and read back into a strip as the reader does at inference;
    the others go straight from their ink to the strip."""

    def __init__(self, pool: DigitPool, size: int, distortion: Augmentation | None,
                 spacing_weights: Sequence[float] = SPACING_WEIGHTS, broken_share: float = BROKEN_SHARE,
                 image_share: float = 0.0, seed: int | None = None):
        self.pool, self.size, self.distortion, self.seed = pool, size, distortion, seed
        self.spacing_weights, self.broken_share, self.image_share = spacing_weights, broken_share, image_share

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        number = self.number(index)
        labels = torch.tensor([ALPHABET.index(char) + 1 for char in number.text if char != " "])
        return torch.from_numpy(number.strip.pixels), labels

    def number(self, index: int) -> DrawnNumber:
        """Number ``index`` (with a ``seed``; a new random one without)."""
        entropy = [self.seed, index] if self.seed is not None else int(torch.randint(2**62, ()))
        rng = np.random.default_rng(entropy)
        while True:
            text = random_number(rng)
            number = self.render(text, rng)
            if number is not None:
                return number

    def render(self, text: str, rng: np.random.Generator) -> DrawnNumber | None:
        """``text`` written in a random style and made into a strip (``None`` if no ink survives the clean-up)."""
        positions = [i for i, char in enumerate(text) if char.isdigit()]
        picks = [rng.choice(self.pool.by_digit[int(text[i])]) for i in positions]
        digits = torch.from_numpy(self.pool.images[picks]).float().div(255).unsqueeze(1)
        if self.distortion is not None:
            digits = self.distortion(digits)
        glyphs = {position: crop_to_ink(image[0].numpy()) for position, image in zip(positions, digits)}
        style = random_style(rng, self.spacing_weights, self.broken_share)
        ink, boxes = render_line(text, style, self.pool, rng, glyphs)
        height = DIGIT_HEIGHT * style.scale
        if rng.random() < 0.1:
            add_underline(ink, boxes, height, rng)
        rows, cols = np.nonzero(ink)
        margin = int(height)  # paper around the number, as in a real image
        top, left = max(rows.min() - margin, 0), max(cols.min() - margin, 0)
        ink = ink[top : rows.max() + margin, left : cols.max() + margin]
        if rng.random() < self.image_share:
            strip = strip_of_image(ink_image(ink, IMAGE_KINDS[rng.integers(len(IMAGE_KINDS))], height, rng))
            return None if strip is None else DrawnNumber(text, strip, None)
        strip = line_strip(ink)
        columns = [((box_left + box_right) / 2 - left) for box_left, _, box_right, _ in boxes]
        return None if strip is None else DrawnNumber(text, strip, columns)


def strip_of_image(image: Image.Image) -> Strip | None:
    """The strip the reader makes of an image holding one line of digits (``None`` if it finds no such line)."""
    try:
        _, lines = ink_lines_of(image)
    except BlankImageError:
        return None
    return strip_of(lines[0], STRIP_DIGIT_HEIGHT) if len(lines) == 1 else None


def collate(samples: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Strips padded to the widest (B×1×32×W), concatenated labels and the lengths CTC needs."""
    width = max(strip.shape[1] for strip, _ in samples)
    strips = torch.stack([F.pad(strip, (0, width - strip.shape[1])) for strip, _ in samples]).unsqueeze(1)
    return {
        "strips": strips,
        "widths": torch.tensor([strip.shape[1] for strip, _ in samples]),
        "labels": torch.cat([labels for _, labels in samples]),
        "label_lengths": torch.tensor([len(labels) for _, labels in samples]),
    }


class LineDataModule(L.LightningDataModule):
    """Synthetic numbers from MNIST digits: training digits for training, validation digits for validation.

    Args:
        data_root: folder holding ``MNIST/raw`` (torchvision layout).
        download: fetch MNIST into ``data_root`` when it is missing.
        val_size: MNIST training images held out (same seeded split as the classifier's).
        split_seed: seed of that split.
        train_numbers: synthetic numbers per training epoch (new ones every epoch).
        val_numbers: synthetic validation numbers (the same every epoch).
        batch_size: numbers per batch.
        num_workers: processes rendering numbers (0: in the training process).
        distortion: random distortion of each digit before it is written.
        spacing_weights: how often training numbers are spaced, tight, normal, touching, overlapping
            (``SPACINGS``; validation numbers always use ``SPACING_WEIGHTS``).
        broken_share: share of the training numbers with broken strokes (validation: ``BROKEN_SHARE``).
        image_share: share of the training numbers made into an image and read back, as at inference.
        val_image_share: share of the validation numbers made into an image and read back (the same ones every
            epoch), so that checkpoints can be chosen on the strips real images give.
    """

    def __init__(self, data_root: str = "../shared/data", download: bool = True, val_size: int = mnist.VALIDATION_SIZE,
                 split_seed: int = mnist.SPLIT_SEED, train_numbers: int = 20000, val_numbers: int = 1000, batch_size: int = 32,
                 num_workers: int = 0, distortion: Augmentation | None = None,
                 spacing_weights: list[float] = list(SPACING_WEIGHTS), broken_share: float = BROKEN_SHARE,
                 image_share: float = 0.0, val_image_share: float = 0.0):
        super().__init__()
        self.save_hyperparameters(ignore=["distortion"])
        self.distortion = distortion

    def prepare_data(self) -> None:
        mnist.fetch_if_missing(self.hparams.data_root, self.hparams.download)

    def setup(self, stage: str) -> None:
        images, labels = mnist.load(self.hparams.data_root, train=True)
        train_index, val_index = mnist.split(len(labels), self.hparams.val_size, self.hparams.split_seed)
        train_pool = DigitPool(images[train_index].numpy(), labels[train_index].numpy())
        val_pool = DigitPool(images[val_index].numpy(), labels[val_index].numpy())
        self.train_set = LineDataset(train_pool, self.hparams.train_numbers, self.distortion,
                                     self.hparams.spacing_weights, self.hparams.broken_share, self.hparams.image_share)
        self.val_set = LineDataset(val_pool, self.hparams.val_numbers, None, image_share=self.hparams.val_image_share,
                                   seed=self.hparams.split_seed)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, collate_fn=collate,
                          num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=64, collate_fn=collate, num_workers=self.hparams.num_workers)
