"""Deterministic benchmark set of handwritten numbers (multi-digit strings) built from MNIST test digits.

    python -m bench.multidigit_set                       # 200 images per subset into bench/data/multidigit
    python -m bench.multidigit_set --per-subset 50 --out /tmp/multidigit
    python -m bench.multidigit_set --digits validation --out bench/data/multidigit_val   # for tuning

``--digits validation`` writes the numbers with the 5,000 MNIST training digits held out for validation
(the split every model uses), so that choices about reading can be made without looking at the test digits.

Subsets (see ``SUBSETS``): ``spaced``, ``tight``, ``touching`` (neighbours slid together until their ink
touches, boxes overlapping by at most 0.15 digit heights), ``overlapping`` (boxes overlap by 15–35% of the
narrower digit, a deliberately hard case), ``separators`` (12.50, 1,234, 07-42, 75 008), ``broken`` (gaps cut through strokes),
``photo`` (dark ink on light textured paper with lighting gradient, ruled lines, baseline drift, size
variation, underlines, JPEG) and ``sketch`` (RGBA canvas, ink only in the alpha channel).
Labels go to ``labels.json``: one record per image with ``subset``, ``file``, ``text``, digit ``boxes``, and
where each digit came from: ``digits`` (``test`` or ``validation``) and ``sources``, the index of each digit's image,
left to right, in that pool of MNIST digits (see :func:`digit_pool`).
:func:`render_number` makes one image in memory (for tests).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hdr import mnist
from hdr.preprocess import Box
from hdr.synthetic import (DIGIT_HEIGHT, IMAGE_KINDS, SPACINGS, DigitPool, LineStyle, add_underline, ink_image,
                           render_line)

SUBSETS = ("spaced", "tight", "touching", "overlapping", "separators", "broken", "photo", "sketch")
SEPARATOR_TEMPLATES = ("D.DD", "DD.DD", "DDD.DD", "D,DDD", "DD,DDD", "D,DDD,DDD", "DD-DD", "DDD-DDDD",
                       "DD-DD-DD", "DD DDD", "DDDD DDDD", "DDD DDD DDD", "DD.DD.DDDD")


@dataclass
class Sample:
    """One generated number: the image, its text and the box of each digit (left, top, right, bottom)."""

    image: Image.Image
    text: str
    boxes: list[Box]
    sources: list[int]  # the index of each digit's image in the pool it was written with, left to right


class RecordingPool(DigitPool):
    """A digit pool that notes the index of every image it hands out."""

    def __init__(self, pool: DigitPool):
        super().__init__(pool.images, pool.labels)
        self.chosen: list[int] = []

    def choose(self, digit: int, rng: np.random.Generator) -> int:
        index = super().choose(digit, rng)
        self.chosen.append(index)
        return index


def random_text(subset: str, rng: np.random.Generator) -> str:
    """A random number for a subset: 2–12 digits, or a separator template for ``separators``."""
    if subset == "separators":
        template = SEPARATOR_TEMPLATES[rng.integers(len(SEPARATOR_TEMPLATES))]
        return "".join(str(rng.integers(10)) if char == "D" else char for char in template)
    return "".join(str(digit) for digit in rng.integers(0, 10, size=rng.integers(2, 13)))


def render_number(text: str, subset: str, seed: int | np.random.Generator, pool: DigitPool,
                  underline: bool | None = None, ruled: bool | None = None) -> Sample:
    """Render ``text`` (digits and ``. , -`` and spaces) in the style of ``subset`` as one image.

    ``underline`` and ``ruled`` (lines on the paper, ``photo`` only) are random when ``None``:
    30% and 70% of ``photo`` images.
    """
    rng = np.random.default_rng(seed)
    is_photo = subset == "photo"
    scale = {"photo": rng.uniform(2, 4), "sketch": rng.uniform(3, 5)}.get(subset, rng.uniform(1, 2))
    style = LineStyle(
        scale=scale,
        spacing=subset if subset in SPACINGS else "normal",
        size_jitter=0.2 if is_photo else 0.05,
        drift_slope=rng.uniform(-0.08, 0.08) if is_photo else 0.0,
        drift_wave=rng.uniform(0, 0.12) if is_photo else 0.0,
        broken=0.6 if subset == "broken" else 0.0,
    )
    recording = RecordingPool(pool)
    ink, boxes = render_line(text, style, recording, rng)
    draw = rng.random()
    if underline if underline is not None else (is_photo and draw < 0.3):
        add_underline(ink, boxes, DIGIT_HEIGHT * scale, rng)
    image, boxes = finish(ink, boxes, subset, DIGIT_HEIGHT * scale, rng, ruled)
    return Sample(image, text, boxes, recording.chosen)


def finish(ink: np.ndarray, boxes: list[Box], subset: str, height: float,
           rng: np.random.Generator, ruled: bool | None) -> tuple[Image.Image, list[Box]]:
    """Crop to the ink plus a margin and turn the ink into the subset's kind of image; the boxes follow."""
    rows, cols = np.nonzero(ink > 0.05)
    margin = int(rng.uniform(0.3, 1.0) * height)
    top, left = max(0, rows.min() - margin), max(0, cols.min() - margin)
    ink = ink[top : rows.max() + margin + 1, left : cols.max() + margin + 1]
    boxes = [(int(l - left), int(t - top), int(r - left), int(b - top)) for l, t, r, b in boxes]
    kind = subset if subset in IMAGE_KINDS else "scan"
    return ink_image(ink, kind, height, rng, ruled), boxes


def sample(subset: str, index: int, pool: DigitPool, seed: int = 0) -> Sample:
    """Image ``index`` of ``subset``: the same every time for the same seed."""
    rng = np.random.default_rng([seed, SUBSETS.index(subset), index])
    return render_number(random_text(subset, rng), subset, rng, pool)


def write_set(out: Path, data_root: str, digits: str, per_subset: int, seed: int = 0) -> list[dict]:
    """Write every subset's images, written with the MNIST ``digits`` (see :func:`digit_pool`), under
    ``out/<subset>/`` and their labels to ``out/labels.json``."""
    pool, records = digit_pool(data_root, digits), []
    for subset in SUBSETS:
        (out / subset).mkdir(parents=True, exist_ok=True)
        for index in range(per_subset):
            item = sample(subset, index, pool, seed)
            name = f"{subset}/{index:04d}.png"
            item.image.save(out / name)
            records.append({"subset": subset, "file": name, "text": item.text, "boxes": item.boxes,
                            "digits": digits, "sources": item.sources})
    (out / "labels.json").write_text(json.dumps(records, indent=1) + "\n")
    return records


def digit_pool(data_root: str, digits: str) -> DigitPool:
    """The MNIST test digits, or the held-out validation digits of the training set."""
    if digits == "test":
        return DigitPool.from_mnist(data_root)
    images, labels = mnist.load_validation(data_root)
    return DigitPool(images.numpy(), labels.numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default="../shared/data", help="MNIST root (holds MNIST/raw)")
    parser.add_argument("--out", type=Path, default=Path("bench/data/multidigit"))
    parser.add_argument("--per-subset", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--digits", choices=("test", "validation"), default="test",
                        help="MNIST digits to write with: test (the benchmark) or held-out validation (tuning)")
    args = parser.parse_args()
    records = write_set(args.out, args.data_root, args.digits, args.per_subset, args.seed)
    print(f"wrote {len(records)} images to {args.out}")


if __name__ == "__main__":
    main()
