"""Deterministic generator of handwritten numbers (multi-digit strings) built from MNIST test digits.

    python -m bench.multidigit_set                       # 200 images per subset into bench/data/multidigit
    python -m bench.multidigit_set --per-subset 50 --out /tmp/multidigit

Subsets (see ``SUBSETS``): ``spaced``, ``tight``, ``touching`` (neighbours slid together until their ink
touches, boxes overlapping by at most 0.15 digit heights), ``overlapping`` (boxes overlap by 15–35% of the
narrower digit, a deliberately hard case), ``separators`` (12.50, 1,234, 07-42, 75 008), ``broken`` (gaps cut through strokes),
``photo`` (dark ink on light textured paper with lighting gradient, ruled lines, baseline drift, size
variation, underlines, JPEG) and ``sketch`` (RGBA canvas, ink only in the alpha channel).
Labels go to ``labels.json``: one record per image with ``subset``, ``file``, ``text`` and digit ``boxes``.
:func:`render_number` makes one image in memory (for tests).
"""
from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from hdr import mnist

SUBSETS = ("spaced", "tight", "touching", "overlapping", "separators", "broken", "photo", "sketch")
DIGIT_HEIGHT = 20  # an MNIST digit fills a 20×20 box: its height at scale 1
SEPARATOR_TEMPLATES = ("D.DD", "DD.DD", "DDD.DD", "D,DDD", "DD,DDD", "D,DDD,DDD", "DD-DD", "DDD-DDDD",
                       "DD-DD-DD", "DD DDD", "DDDD DDDD", "DDD DDD DDD", "DD.DD.DDDD")

Box = tuple[int, int, int, int]


@dataclass
class Sample:
    """One generated number: the image, its text and the box of each digit (left, top, right, bottom)."""

    image: Image.Image
    text: str
    boxes: list[Box]


class DigitPool:
    """MNIST test digits by label, each cropped to its ink and scaled to [0, 1]."""

    def __init__(self, data_root: str | Path = "../shared/data"):
        images, labels = mnist.load(data_root, train=False)
        self.images, self.labels = images.numpy(), labels.numpy()
        self.by_digit = [np.flatnonzero(self.labels == digit) for digit in range(10)]

    def pick(self, digit: int, rng: np.random.Generator) -> np.ndarray:
        image = self.images[rng.choice(self.by_digit[digit])].astype(np.float32) / 255
        rows, cols = np.nonzero(image > 0.1)
        return image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def random_text(subset: str, rng: np.random.Generator) -> str:
    """A random number for a subset: 2–12 digits, or a separator template for ``separators``."""
    if subset == "separators":
        template = SEPARATOR_TEMPLATES[rng.integers(len(SEPARATOR_TEMPLATES))]
        return "".join(str(rng.integers(10)) if char == "D" else char for char in template)
    return "".join(str(digit) for digit in rng.integers(0, 10, size=rng.integers(2, 13)))


def resize(ink: np.ndarray, scale: float) -> np.ndarray:
    """Smoothly rescale an ink bitmap."""
    height, width = ink.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.clip(np.asarray(Image.fromarray(ink, mode="F").resize(size, Image.BICUBIC)), 0, 1)


def stroke(points: list[tuple[float, float]], radius: float, pad: float = 1.0) -> tuple[np.ndarray, float, float]:
    """An anti-aliased pen stroke through ``points`` (x, y); returns the bitmap and its top-left corner."""
    xs, ys = zip(*points)
    left, top = min(xs) - radius - pad, min(ys) - radius - pad
    width, height = int(np.ceil(max(xs) - left + radius + pad)), int(np.ceil(max(ys) - top + radius + pad))
    grid_y, grid_x = np.mgrid[0:height, 0:width] + 0.5
    grid_x, grid_y = grid_x + left, grid_y + top
    distance = np.full((height, width), np.inf)
    for (x0, y0), (x1, y1) in zip(points, points[1:] or points):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((grid_x - x0) * dx + (grid_y - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        distance = np.minimum(distance, np.hypot(grid_x - x0 - t * dx, grid_y - y0 - t * dy))
    return np.clip(radius + 0.5 - distance, 0, 1).astype(np.float32), left, top


def break_strokes(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cut a gap (a band about one stroke wide, within ±20° of horizontal) through a digit."""
    height, width = ink.shape
    grid_y, grid_x = np.mgrid[0:height, 0:width]
    centre = height * rng.choice([rng.uniform(0.2, 0.4), rng.uniform(0.6, 0.8)])
    slope = np.tan(np.radians(rng.uniform(-20, 20)))
    half_gap = max(1.0, rng.uniform(0.05, 0.08) * height)
    band = np.abs(grid_y - centre - slope * (grid_x - width / 2)) < half_gap
    return np.where(band, 0, ink)


class Canvas:
    """A growing ink canvas (float, ink 1) that glyphs are pasted on with ``max``."""

    def __init__(self, width: int, height: int):
        self.ink = np.zeros((height, width), np.float32)

    def touches(self, glyph: np.ndarray, left: int, top: int) -> bool:
        """Whether ``glyph`` at (left, top) would touch ink already on the canvas (8-neighbourhood)."""
        region = self.ink[top : top + glyph.shape[0], left : left + glyph.shape[1]]
        return bool((ndimage.binary_dilation(region > 0.3, iterations=1) & (glyph > 0.3)).any())

    def paste(self, glyph: np.ndarray, left: int, top: int) -> Box:
        region = self.ink[top : top + glyph.shape[0], left : left + glyph.shape[1]]
        np.maximum(region, glyph, out=region)
        return left, top, left + glyph.shape[1], top + glyph.shape[0]


def separator_glyph(char: str, height: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A pen-drawn '.', ',' or '-' and how far above the baseline its bottom sits (negative: below)."""
    radius = max(1.2, rng.uniform(0.05, 0.08) * height)
    if char == "-":
        length, tilt = rng.uniform(0.35, 0.6) * height, rng.uniform(-0.08, 0.08) * height
        glyph, _, _ = stroke([(0, tilt), (length, -tilt)], radius)
        return glyph, rng.uniform(0.4, 0.55) * height - glyph.shape[0] / 2
    dot, _, _ = stroke([(0, 0), (0.3, 0.2)], radius * 1.3)
    if char == ".":
        return dot, rng.uniform(-0.02, 0.04) * height
    tail = rng.uniform(0.2, 0.3) * height
    glyph, _, _ = stroke([(0, 0), (0.3, 0.2), (-0.25 * tail, tail)], radius * 1.1)
    return glyph, -tail + rng.uniform(0.0, 0.05) * height


def gap_between(subset: str, height: float, rng: np.random.Generator) -> float:
    """Horizontal gap between neighbouring digits' boxes (negative: overlap), for subsets that use a fixed gap."""
    if subset == "spaced":
        return rng.uniform(0.3, 0.8) * height
    if subset == "tight":
        return max(1.0, rng.uniform(0.03, 0.1) * height)
    return rng.uniform(0.12, 0.45) * height


def render_number(text: str, subset: str, seed: int | np.random.Generator, pool: DigitPool,
                  underline: bool | None = None, ruled: bool | None = None) -> Sample:
    """Render ``text`` (digits and ``. , -`` and spaces) in the style of ``subset`` as one image.

    ``underline`` and ``ruled`` (lines on the paper, ``photo`` only) are random when ``None``:
    30% and 70% of ``photo`` images.
    """
    rng = np.random.default_rng(seed)
    scale = {"photo": rng.uniform(2, 4), "sketch": rng.uniform(3, 5)}.get(subset, rng.uniform(1, 2))
    height = DIGIT_HEIGHT * scale
    drift_slope = rng.uniform(-0.08, 0.08) if subset == "photo" else 0.0
    drift_wave = rng.uniform(0, 0.12) * height if subset == "photo" else 0.0
    wave_length = rng.uniform(4, 8) * height
    canvas = Canvas(int(len(text) * 2 * height + 4 * height), int(8 * height))
    baseline0, cursor, previous = 4.5 * height, height, None
    boxes: list[Box] = []
    for char in text:
        if char == " ":
            cursor += rng.uniform(0.9, 1.4) * height
            continue
        baseline = baseline0 + drift_slope * cursor + drift_wave * np.sin(2 * np.pi * cursor / wave_length)
        if char.isdigit():
            size = rng.uniform(0.8, 1.2) if subset == "photo" else rng.uniform(0.95, 1.05)
            glyph = resize(pool.pick(int(char), rng), scale * size)
            if subset == "broken" and rng.random() < 0.6:
                glyph = break_strokes(glyph, rng)
            lift = rng.uniform(-0.04, 0.04) * height
        else:
            glyph, lift = separator_glyph(char, height, rng)
        top = int(round(baseline - lift - glyph.shape[0]))
        if previous is None or not char.isdigit() or not previous.isdigit():
            left = cursor + (rng.uniform(0.1, 0.3) * height if previous else 0)
        elif subset == "overlapping":
            left = cursor - rng.uniform(0.15, 0.35) * min(glyph.shape[1], boxes[-1][2] - boxes[-1][0])
        else:
            left = cursor + gap_between(subset, height, rng)
        left = int(round(left))
        if subset == "touching" and previous is not None and previous.isdigit() and char.isdigit():
            left = boxes[-1][2]  # boxes side by side, then slid together until the inks touch
            deepest = left - max(2, round(0.15 * height))
            while left > deepest and not canvas.touches(glyph, left, top):
                left -= 1
            left -= int(rng.integers(0, 2))
        box = canvas.paste(glyph, left, top)
        if char.isdigit():
            boxes.append(box)
        cursor, previous = box[2], char
    draw = rng.random()
    if underline if underline is not None else (subset == "photo" and draw < 0.3):
        add_underline(canvas, boxes, height, rng)
    return finish(canvas.ink, boxes, text, subset, height, rng, ruled)


def add_underline(canvas: Canvas, boxes: list[Box], height: float, rng: np.random.Generator) -> None:
    """A slightly wavy pen line under the digits, not touching them."""
    left, right = boxes[0][0] - rng.uniform(0, 0.3) * height, boxes[-1][2] + rng.uniform(0, 0.3) * height
    y = max(box[3] for box in boxes) + rng.uniform(0.15, 0.3) * height
    points = [(x, y + rng.uniform(-0.04, 0.04) * height) for x in np.linspace(left, right, 5)]
    line, line_left, line_top = stroke(points, max(1.2, 0.05 * height))
    canvas.paste(line, int(line_left), int(line_top))


def finish(ink: np.ndarray, boxes: list[Box], text: str, subset: str, height: float,
           rng: np.random.Generator, ruled: bool | None) -> Sample:
    """Crop to the ink plus a margin and turn the ink into the subset's kind of image."""
    rows, cols = np.nonzero(ink > 0.05)
    margin = int(rng.uniform(0.3, 1.0) * height)
    top, left = max(0, rows.min() - margin), max(0, cols.min() - margin)
    ink = ink[top : rows.max() + margin + 1, left : cols.max() + margin + 1]
    boxes = [(int(l - left), int(t - top), int(r - left), int(b - top)) for l, t, r, b in boxes]
    if subset == "sketch":
        rgba = np.zeros((*ink.shape, 4), np.uint8)
        rgba[..., 3] = np.round(ink * 255)
        return Sample(Image.fromarray(rgba, "RGBA"), text, boxes)
    if subset == "photo":
        return Sample(photo(ink, height, rng, ruled), text, boxes)
    darkness = rng.uniform(0.8, 1.0)
    return Sample(Image.fromarray(np.round(255 * (1 - darkness * ink)).astype(np.uint8), "L"), text, boxes)


def photo(ink: np.ndarray, height: float, rng: np.random.Generator, ruled: bool | None) -> Image.Image:
    """Ink on light paper: lighting gradient, texture, noise, ruled lines, colour cast, blur and JPEG."""
    rows, cols = ink.shape
    grid_y, grid_x = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    angle = rng.uniform(0, 2 * np.pi)
    lighting = 1 - rng.uniform(0.05, 0.35) * (np.cos(angle) * grid_x + np.sin(angle) * grid_y)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, ink.shape), rng.uniform(2, 6)) * rng.uniform(0.5, 2)
    paper = np.clip(rng.uniform(0.8, 0.97) * lighting + 0.03 * texture, 0, 1)[..., None] * rng.uniform(0.9, 1.0, 3)
    spacing, offset = rng.uniform(1.4, 2.0) * height, rng.uniform(0, 2 * height)
    line_colour = np.array([0.55, 0.7, 0.95]) * paper.mean()
    on_line = (np.abs((np.arange(rows) - offset) % spacing) < max(1, height * 0.04)).astype(np.float32)[:, None, None]
    draw = rng.random()
    if ruled if ruled is not None else draw < 0.7:
        paper = paper * (1 - 0.6 * on_line) + line_colour * 0.6 * on_line
    ink_colour = np.array([[0.05, 0.05, 0.08], [0.08, 0.12, 0.45], [0.2, 0.2, 0.2]])[rng.integers(3)]
    alpha = (ndimage.gaussian_filter(ink, rng.uniform(0.3, 1.0)) * rng.uniform(0.8, 0.95))[..., None]
    image = paper * (1 - alpha) + ink_colour * alpha + rng.normal(0, rng.uniform(0.01, 0.04), paper.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), "RGB").save(
        buffer, "JPEG", quality=int(rng.integers(75, 95)))
    return Image.open(buffer)


def sample(subset: str, index: int, pool: DigitPool, seed: int = 0) -> Sample:
    """Image ``index`` of ``subset``: the same every time for the same seed."""
    rng = np.random.default_rng([seed, SUBSETS.index(subset), index])
    return render_number(random_text(subset, rng), subset, rng, pool)


def write_set(out: Path, pool: DigitPool, per_subset: int, seed: int = 0) -> list[dict]:
    """Write every subset's images under ``out/<subset>/`` and their labels to ``out/labels.json``."""
    records = []
    for subset in SUBSETS:
        (out / subset).mkdir(parents=True, exist_ok=True)
        for index in range(per_subset):
            item = sample(subset, index, pool, seed)
            name = f"{subset}/{index:04d}.png"
            item.image.save(out / name)
            records.append({"subset": subset, "file": name, "text": item.text, "boxes": item.boxes})
    (out / "labels.json").write_text(json.dumps(records, indent=1) + "\n")
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default="../shared/data", help="MNIST root (holds MNIST/raw)")
    parser.add_argument("--out", type=Path, default=Path("bench/data/multidigit"))
    parser.add_argument("--per-subset", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    records = write_set(args.out, DigitPool(args.data_root), args.per_subset, args.seed)
    print(f"wrote {len(records)} images to {args.out}")


if __name__ == "__main__":
    main()
