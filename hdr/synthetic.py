"""Synthetic handwritten numbers: MNIST digits composed into a line of ink, as a person would write them.

Used to train the line reader (from MNIST *training* digits, :mod:`hdr.line_data`) and to build the
multi-digit benchmark (from MNIST *test* digits, ``bench/multidigit_set.py``). A line is rendered as a
float ink canvas (ink 1 on 0); :func:`ink_image` turns it into a scan, a photo or a sketch canvas.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from hdr.preprocess import Box

DIGIT_HEIGHT = 20  # an MNIST digit fills a 20×20 box: its height at scale 1
SPACINGS = ("spaced", "tight", "normal", "touching", "overlapping")
IMAGE_KINDS = ("scan", "photo", "sketch")


class DigitPool:
    """Digits by label, each cropped to its ink and scaled to [0, 1]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels
        self.by_digit = [np.flatnonzero(labels == digit) for digit in range(10)]

    @classmethod
    def from_mnist(cls, data_root="../shared/data", train: bool = False) -> DigitPool:
        """The MNIST test (or training) digits."""
        from hdr import mnist

        images, labels = mnist.load(data_root, train=train)
        return cls(images.numpy(), labels.numpy())

    def pick(self, digit: int, rng: np.random.Generator) -> np.ndarray:
        """A random image of ``digit``, cropped to its ink."""
        return self.glyph(self.choose(digit, rng))

    def choose(self, digit: int, rng: np.random.Generator) -> int:
        """The index of a random image of ``digit``."""
        return int(rng.choice(self.by_digit[digit]))

    def glyph(self, index: int) -> np.ndarray:
        """Image ``index`` cropped to its ink, in [0, 1]."""
        return crop_to_ink(self.images[index].astype(np.float32) / 255)


def crop_to_ink(image: np.ndarray) -> np.ndarray:
    """The part of a digit image (in [0, 1]) that holds ink (the whole image if it has none)."""
    rows, cols = np.nonzero(image > 0.1)
    if len(rows) == 0:
        return image
    return image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


@dataclass
class LineStyle:
    """How a number is written: size, spacing between digits, baseline drift, broken strokes."""

    scale: float = 1.0  # digit height = DIGIT_HEIGHT × scale
    spacing: str = "normal"  # one of SPACINGS
    size_jitter: float = 0.05  # each digit's size varies by up to ± this fraction
    drift_slope: float = 0.0  # baseline rise per pixel
    drift_wave: float = 0.0  # amplitude of a slow baseline wave, × digit height
    broken: float = 0.0  # probability that a digit gets a gap cut through its strokes


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
    """An ink array (float, ink 1) that glyphs are pasted on with ``max``."""

    def __init__(self, ink: np.ndarray):
        self.ink = ink

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


def digit_left(spacing: str, cursor: float, glyph: np.ndarray, previous: Box, height: float,
               rng: np.random.Generator) -> float:
    """Where the next digit starts after a digit ending at ``cursor`` (``touching`` is settled on the canvas)."""
    if spacing == "spaced":
        return cursor + rng.uniform(0.3, 0.8) * height
    if spacing == "tight":
        return cursor + max(1.0, rng.uniform(0.03, 0.1) * height)
    if spacing == "overlapping":
        return cursor - rng.uniform(0.15, 0.35) * min(glyph.shape[1], previous[2] - previous[0])
    return cursor + rng.uniform(0.12, 0.45) * height


def render_line(text: str, style: LineStyle, pool: DigitPool, rng: np.random.Generator,
                glyphs: dict[int, np.ndarray] | None = None) -> tuple[np.ndarray, list[Box]]:
    """Ink of ``text`` (digits, ``. , -`` and spaces) written in ``style``, with the box of each digit.

    ``glyphs`` may supply the bitmap of the digit at each position of ``text`` (e.g. distorted ones).
    """
    height = DIGIT_HEIGHT * style.scale
    wave_length = rng.uniform(4, 8) * height
    canvas = Canvas(np.zeros((int(8 * height), int(len(text) * 2 * height + 4 * height)), np.float32))
    baseline0, cursor, previous = 4.5 * height, height, None
    boxes: list[Box] = []
    for position, char in enumerate(text):
        if char == " ":
            cursor += rng.uniform(0.9, 1.4) * height
            continue
        baseline = baseline0 + style.drift_slope * cursor \
            + style.drift_wave * height * np.sin(2 * np.pi * cursor / wave_length)
        if char.isdigit():
            size = 1 + rng.uniform(-style.size_jitter, style.size_jitter)
            source = glyphs[position] if glyphs else pool.pick(int(char), rng)
            glyph = resize(source, style.scale * size)
            if style.broken and rng.random() < style.broken:
                glyph = break_strokes(glyph, rng)
            lift = rng.uniform(-0.04, 0.04) * height
        else:
            glyph, lift = separator_glyph(char, height, rng)
        top = int(round(baseline - lift - glyph.shape[0]))
        both_digits = previous is not None and previous.isdigit() and char.isdigit()
        if not both_digits:
            left = cursor + (rng.uniform(0.1, 0.3) * height if previous else 0)
        else:
            left = digit_left(style.spacing, cursor, glyph, boxes[-1], height, rng)
        left = int(round(left))
        if style.spacing == "touching" and both_digits:
            left = boxes[-1][2]  # boxes side by side, then slid together until the inks touch
            deepest = left - max(2, round(0.15 * height))
            while left > deepest and not canvas.touches(glyph, left, top):
                left -= 1
            left -= int(rng.integers(0, 2))
        box = canvas.paste(glyph, left, top)
        if char.isdigit():
            boxes.append(box)
        cursor, previous = box[2], char
    return canvas.ink, boxes


def add_underline(ink: np.ndarray, boxes: list[Box], height: float, rng: np.random.Generator) -> None:
    """Draw a slightly wavy pen line under the digits (not touching them) onto ``ink``."""
    left, right = boxes[0][0] - rng.uniform(0, 0.3) * height, boxes[-1][2] + rng.uniform(0, 0.3) * height
    y = max(box[3] for box in boxes) + rng.uniform(0.15, 0.3) * height
    points = [(x, y + rng.uniform(-0.04, 0.04) * height) for x in np.linspace(left, right, 5)]
    line, line_left, line_top = stroke(points, max(1.2, 0.05 * height))
    Canvas(ink).paste(line, int(line_left), int(line_top))


def ink_image(ink: np.ndarray, kind: str, height: float, rng: np.random.Generator,
              ruled: bool | None = None) -> Image.Image:
    """An ink canvas as a kind of image (``IMAGE_KINDS``): ``scan`` (dark grey ink on white), ``photo`` (see
    :func:`photo`) or ``sketch`` (an RGBA canvas with the ink only in its alpha channel). ``height`` is the
    digits' height in pixels; ``ruled`` is passed to :func:`photo`."""
    if kind == "sketch":
        rgba = np.zeros((*ink.shape, 4), np.uint8)
        rgba[..., 3] = np.round(ink * 255)
        return Image.fromarray(rgba, "RGBA")
    if kind == "photo":
        return photo(ink, height, rng, ruled)
    darkness = rng.uniform(0.8, 1.0)
    return Image.fromarray(np.round(255 * (1 - darkness * ink)).astype(np.uint8), "L")


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
