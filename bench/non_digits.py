"""Images that are not digits (shapes, scribbles, letters, noise, Fashion-MNIST when installed), for the
"not a digit" check of the realistic benchmark. Deterministic.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist), when present.
FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
LETTERS = "ABCDEFGHKMNPQRTUVWXYZabdefhkmnpqrtwxy#@%&?"  # no O/I/l/S/Z-like shapes that are digits in disguise
SHAPES = ("circle", "square", "triangle", "scribble", "letter", "noise", "line")


def render_shape(kind: str, seed: int, size: int = 400) -> Image.Image:
    """One non-digit image of ``kind``: dark drawing on light paper."""
    rng = np.random.default_rng([7, SHAPES.index(kind), seed])
    image = Image.new("L", (size, size), int(rng.integers(220, 256)))
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(6, 18))
    low, high = rng.uniform(0.1, 0.3) * size, rng.uniform(0.7, 0.9) * size
    box = [low, low + rng.uniform(-0.05, 0.05) * size, high, high + rng.uniform(-0.05, 0.05) * size]
    ink = int(rng.integers(0, 60))
    if kind == "circle":
        draw.ellipse(box, outline=ink, width=width)
    elif kind == "square":
        draw.rectangle(box, outline=ink, width=width)
    elif kind == "triangle":
        draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) / 2, box[1])], outline=ink, width=width)
    elif kind == "scribble":
        points = rng.uniform(0.15, 0.85, (int(rng.integers(8, 16)), 2)) * size
        draw.line([tuple(p) for p in points], fill=ink, width=width, joint="curve")
    elif kind == "letter":
        font = ImageFont.load_default(size=int(size * 0.7))
        letter = LETTERS[int(rng.integers(len(LETTERS)))]
        draw.text((size / 2, size / 2), letter, fill=ink, font=font, anchor="mm")
    elif kind == "line":  # a dash, an underline or an equals sign, slightly tilted
        tilt = rng.uniform(-0.08, 0.08) * (high - low)
        strokes = int(rng.integers(1, 3))
        for row in np.linspace(0.45, 0.6, strokes) * size if strokes > 1 else [rng.uniform(0.3, 0.7) * size]:
            draw.line([(low, row - tilt), (high, row + tilt)], fill=ink, width=width)
    else:  # noise: a textured surface with no writing at all
        values = rng.normal(128, 60, (size // 8, size // 8)).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(values, "L").resize((size, size), Image.Resampling.BICUBIC)
    return image


def fashion_mnist_images(count: int) -> list[Image.Image]:
    """The first ``count`` Fashion-MNIST test images (28×28, light on dark; none if not installed)."""
    for folder in FASHION_MNIST_DIRS:
        files = sorted(folder.rglob("t10k-images-idx3-ubyte*")) if folder.is_dir() else []
        if files:
            data = files[0].read_bytes()
            if files[0].suffix == ".gz":
                data = gzip.decompress(data)
            images = np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)[:count]
            return [Image.fromarray(image, "L") for image in images]
    return []


def non_digit_images(per_shape: int = 40, fashion: int = 200) -> list[tuple[str, Image.Image]]:
    """(kind, image) pairs: ``per_shape`` of every drawn shape, plus Fashion-MNIST when installed."""
    images = [(kind, render_shape(kind, seed)) for kind in SHAPES for seed in range(per_shape)]
    return images + [("fashion_mnist", image) for image in fashion_mnist_images(fashion)]
