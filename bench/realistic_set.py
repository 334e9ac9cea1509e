"""A labelled set of realistic digit images built from MNIST *test* digits (deterministic).

Each MNIST digit is re-drawn as ink on a synthetic medium: a phone photo of paper, a scan of ruled
paper, a Gradio sketchpad canvas, a hair-thin pen, a fat marker, a thumbnail, a small digit in a
corner, chalk on a board, a note lying on a desk, a close-up photo of lined notebook paper. The digit's
shape comes from MNIST; its strokes are re-drawn either by thresholding a smooth upscale (keeps the
writer's stroke width) or along its skeleton with a chosen pen width (and round the edge of loops the
writer inked solid).

    python bench/realistic_set.py                      # 300 images per kind → bench/data/realistic/
    python bench/realistic_set.py --per-kind 50 --kinds photo scan
    python bench/realistic_set.py --digits validation --output bench/data/realistic_dev   # a dev set, for tuning

``--digits validation`` draws the 5,000 MNIST training digits held out for validation (the split every model uses)
instead, so that choices about preprocessing and models can be made without looking at the test digits.

Layout (ImageFolder): ``bench/data/realistic/<kind>/<digit>/<index>.png`` (``.jpg`` for photos and lined paper).
:func:`render` draws one image from a 28×28 array, for tests.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hdr import augment, mnist  # noqa: E402

KINDS = (
    "photo", "scan", "sketch_transparent", "sketch_white", "thin_pen",
    "thick_marker", "small", "off_centre", "dark_background", "sheet_on_desk", "lined_paper",
)
DEFAULT_OUTPUT = REPO / "bench" / "data" / "realistic"
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
SEED = 2026
STAMP_FILE = ".generated"  # in each kind folder: the version of this module that drew it
UNFINISHED = "unfinished\n"  # the stamp while a kind is being drawn
# MNIST pixels are ink coverage (anti-aliased): the edge of the writer's stroke is where coverage crosses 0.5.
# Re-stroking follows the centre lines within that edge; a lower level merges the gaps of bold digits first.
PEN_EDGE = 0.5
FILLED_WIDTH = 2.0  # ink this many times wider than the writer's usual stroke counts as filled in
PINHOLE = 1.5 / 28  # a hole smaller than about 1.5 × 1.5 MNIST pixels is a gap of the anti-aliasing: filled in


# ---------------------------------------------------------------------------------------- strokes


def upscale(digit: np.ndarray, factor: int) -> np.ndarray:
    """A smooth (bicubic) upscale of a 28×28 digit in [0, 1]."""
    image = Image.fromarray(digit.astype(np.float32))
    return np.asarray(image.resize((28 * factor, 28 * factor), Image.Resampling.BICUBIC), dtype=np.float32)


def natural_strokes(digit: np.ndarray, height: int) -> np.ndarray:
    """Ink coverage (float, anti-aliased) of the digit at ``height`` px, keeping the writer's stroke width."""
    factor = max(2, math.ceil(2 * height / 20))
    field = upscale(digit, factor) > 0.3
    return _crop_resize(field.astype(np.float32), height)


def without_pinholes(ink: np.ndarray) -> np.ndarray:
    """The ink with holes far smaller than a loop filled: gaps of the anti-aliasing, not of the writer."""
    holes, count = ndi.label(ndi.binary_fill_holes(ink) & ~ink)
    sizes = ndi.sum_labels(np.ones_like(ink), holes, range(1, count + 1))
    pinhole_area = (PINHOLE * ink.shape[0]) ** 2
    return ink | np.isin(holes, 1 + np.flatnonzero(sizes < pinhole_area))


def filled_regions(ink: np.ndarray, centre_lines: np.ndarray) -> np.ndarray:
    """The parts of the ink much wider than the writer's usual stroke: loops inked solid, pools of ink.

    Their skeleton is a line: re-stroking along it alone turned a bold 9 into a 1 and a bold 6 into an L.
    """
    distance = ndi.distance_transform_edt(ink)
    radius = FILLED_WIDTH * float(np.median(distance[centre_lines]))
    yy, xx = np.mgrid[-math.ceil(radius) : math.ceil(radius) + 1, -math.ceil(radius) : math.ceil(radius) + 1]
    return ndi.binary_opening(ink, structure=yy**2 + xx**2 <= radius**2)


def pen_strokes(digit: np.ndarray, height: int, width: float, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage of the digit at ``height`` px drawn along its skeleton with a round pen ``width`` px wide;
    round the edge of a region the writer inked solid (a filled loop), as a pen draws a loop."""
    factor = 6
    ink = without_pinholes(upscale(digit, factor) > PEN_EDGE)
    centre_lines = augment.skeleton(torch.from_numpy(ink)[None, None])[0, 0].numpy()  # Zhang–Suen thinning
    ys, xs = np.nonzero(centre_lines)
    if ys.size == 0:
        return natural_strokes(digit, height)
    filled = filled_regions(ink, centre_lines)
    inside = ndi.binary_erosion(filled)
    centre_lines = (centre_lines | filled) & ~inside  # the pen goes round a filled region, not through it
    ys, xs = np.nonzero(centre_lines)
    box_top, box_left = ys.min(), xs.min()
    box_size = max(ys.max() - box_top, xs.max() - box_left) + 1
    supersample = 4 if width < 3 else 2
    scale = height / box_size * supersample
    index = -np.ones(centre_lines.shape, int)
    index[ys, xs] = np.arange(ys.size)
    points = np.stack([xs - box_left, ys - box_top], axis=1).astype(float)
    edges = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        other = np.full(ys.size, -1)
        inside = (ys + dy < centre_lines.shape[0]) & (xs + dx >= 0) & (xs + dx < centre_lines.shape[1])
        other[inside] = index[ys[inside] + dy, xs[inside] + dx]
        edges += [(a, b) for a, b in zip(np.flatnonzero(other >= 0), other[other >= 0])]
    neighbours = [[] for _ in range(ys.size)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    for _ in range(3):  # smooth away the pixel staircase of the skeleton
        points = np.array([(points[i] + points[n].sum(0)) / (1 + len(n)) for i, n in enumerate(neighbours)])
    points = points * scale + width * supersample
    side = int(math.ceil(box_size * scale + 2 * width * supersample))
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    pen = max(1.0, width * supersample)
    pressure = 1 + 0.08 * rng.standard_normal(ys.size)  # slight variation of the pen width along the stroke
    for a, b in edges:
        w = max(1, round(pen * (pressure[a] + pressure[b]) / 2))
        draw.line([tuple(points[a]), tuple(points[b])], fill=255, width=w)
    radius = pen / 2
    for (x, y), p in zip(points, pressure):
        r = max(0.5, radius * p)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    coverage = np.asarray(canvas.reduce(supersample), dtype=np.float32) / 255
    return _crop_resize(coverage, None)


def _crop_resize(coverage: np.ndarray, height: int | None) -> np.ndarray:
    rows = np.flatnonzero(coverage.max(1) > 0)
    columns = np.flatnonzero(coverage.max(0) > 0)
    coverage = coverage[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    if height is not None:
        scale = height / coverage.shape[0]
        size = (max(1, round(coverage.shape[1] * scale)), height)
        coverage = np.asarray(Image.fromarray(coverage).resize(size, Image.Resampling.BOX), dtype=np.float32)
    return np.clip(coverage, 0, 1)


def slant(coverage: np.ndarray, rng: np.random.Generator, degrees: float = 8.0) -> np.ndarray:
    """Rotate (and slightly shear) the ink like a person's handwriting varies."""
    angle = rng.uniform(-degrees, degrees)
    shear = rng.uniform(-0.15, 0.15)
    image = Image.fromarray(coverage)
    width, height = image.size
    pad = int(0.3 * max(width, height)) + 2
    canvas = Image.new("F", (width + 2 * pad, height + 2 * pad), 0.0)
    canvas.paste(image, (pad, pad))
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, shear, -shear * canvas.height / 2, 0, 1, 0),
                              Image.Resampling.BILINEAR)
    canvas = canvas.rotate(angle, Image.Resampling.BILINEAR)
    return _crop_resize(np.asarray(canvas, dtype=np.float32), None)


# -------------------------------------------------------------------------------------- backgrounds


def smooth_noise(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-spread noise with features about ``scale`` pixels wide."""
    coarse_shape = (max(2, int(shape[0] / scale) + 2), max(2, int(shape[1] / scale) + 2))
    coarse = rng.standard_normal(coarse_shape).astype(np.float32)
    field = np.asarray(Image.fromarray(coarse).resize((shape[1], shape[0]), Image.Resampling.BICUBIC), dtype=np.float32)
    return field / (field.std() + 1e-6)


def lighting(shape: tuple[int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    """A multiplicative lighting field: a linear gradient plus a vignette."""
    height, width = shape
    y, x = np.ogrid[0:height, 0:width]
    x, y = (x / width - 0.5).astype(np.float32), (y / height - 0.5).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (x * np.cos(angle) + y * np.sin(angle)) * rng.uniform(0.3, 1.0)
    cx, cy = rng.uniform(-0.3, 0.3, 2)
    vignette = (x - cx) ** 2 + (y - cy) ** 2
    field = 1 - strength * (gradient + 0.5) * 0.6 - strength * vignette * rng.uniform(0.3, 1.2)
    return np.clip(field, 0.25, 1.0).astype(np.float32)


def composite(paper: np.ndarray, coverage: np.ndarray, ink_colour, opacity: float, top: int, left: int) -> np.ndarray:
    """Lay ink of ``ink_colour`` (per channel) over ``paper`` (H×W×C float) where ``coverage`` says."""
    out = paper.copy()
    height, width = coverage.shape
    region = out[top : top + height, left : left + width]
    alpha = (coverage * opacity)[:, :, None]
    out[top : top + height, left : left + width] = region * (1 - alpha) + np.asarray(ink_colour, np.float32) * alpha
    return out


def fit(strokes: np.ndarray, canvas_shape: tuple[int, int]) -> np.ndarray:
    """The strokes, shrunk to 90% of the canvas if they do not fit in it (a digit much wider than tall, sized by
    its height, can be wider than the canvas)."""
    scale = min(canvas_shape[0] / strokes.shape[0], canvas_shape[1] / strokes.shape[1])
    return strokes if scale >= 1 else _crop_resize(strokes, max(1, int(0.9 * strokes.shape[0] * scale)))


def place(canvas_shape: tuple[int, int], ink_shape: tuple[int, int], rng: np.random.Generator, margin: float = 0.05):
    """A random (top, left) keeping the ink inside the canvas with a margin."""
    (height, width), (ink_height, ink_width) = canvas_shape, ink_shape
    my, mx = int(margin * height), int(margin * width)
    top = rng.integers(my, max(my + 1, height - ink_height - my))
    left = rng.integers(mx, max(mx + 1, width - ink_width - mx))
    return int(min(top, height - ink_height)), int(min(left, width - ink_width))


def gaussian_noise(rng: np.random.Generator, sigma: float, shape) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)


def to_uint8(array: np.ndarray) -> np.ndarray:
    return np.clip(np.round(array), 0, 255).astype(np.uint8)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert(image.mode)


def canvas_size(rng: np.random.Generator, low: int, high: int) -> tuple[int, int]:
    """(height, width) with the longer side in [low, high] and a 4:3 or 3:4 or square shape."""
    long_side = int(rng.integers(low, high + 1))
    ratio = rng.choice([0.75, 1.0, 0.75])
    short = int(long_side * ratio)
    return (long_side, short) if rng.random() < 0.5 else (short, long_side)


# ------------------------------------------------------------------------------------------- kinds


def render_photo(digit, rng):
    """Phone photo: tinted paper, uneven light, perspective, blur, noise, JPEG."""
    height, width = canvas_size(rng, 1000, 2400)
    paper_colour = rng.uniform(200, 250) * np.array([1, rng.uniform(0.93, 1.0), rng.uniform(0.8, 1.0)])
    paper = np.ones((height, width, 3), np.float32) * paper_colour.astype(np.float32)
    paper += 4 * smooth_noise((height, width), 40, rng)[:, :, None]
    ink_height = int(min(height, width) * rng.uniform(0.3, 0.6))
    strokes = natural_strokes(digit, ink_height) if rng.random() < 0.6 else pen_strokes(
        digit, ink_height, ink_height * rng.uniform(0.05, 0.1), rng)
    strokes = fit(slant(strokes, rng), (height, width))
    ink = rng.choice([(25, 25, 30), (20, 30, 110), (60, 60, 65), (30, 30, 80)])
    top, left = place((height, width), strokes.shape, rng, 0.1)
    image = composite(paper, strokes, ink, rng.uniform(0.75, 1.0), top, left)
    return phone_camera(image, rng, tuple(int(c) for c in paper_colour * 0.7))


def phone_camera(scene: np.ndarray, rng: np.random.Generator, fill) -> Image.Image:
    """A phone photo of ``scene`` (H×W×3 float): uneven light, a slight perspective (corners filled with ``fill``),
    blur, noise, JPEG."""
    height, width = scene.shape[:2]
    scene = scene * lighting((height, width), rng, rng.uniform(0.2, 0.6))[:, :, None]
    photo = perspective(Image.fromarray(to_uint8(scene), "RGB"), rng, 0.06, fill)
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.8)))
    noisy = np.asarray(photo, np.float32) + gaussian_noise(rng, rng.uniform(2, 7), (height, width, 3))
    return jpeg(Image.fromarray(to_uint8(noisy), "RGB"), int(rng.integers(45, 86)))


def perspective(image: Image.Image, rng: np.random.Generator, amount: float, fill) -> Image.Image:
    """A random mild perspective distortion (corners moved by up to ``amount`` of the size) and rotation."""
    width, height = image.size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], float)
    moved = corners + rng.uniform(-amount, amount, (4, 2)) * [width, height]
    angle = math.radians(rng.uniform(-6, 6))
    centre = np.array([width / 2, height / 2])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = (moved - centre) @ rotation.T + centre
    # PIL wants the coefficients mapping output pixels to input pixels.
    rows = []
    for (x, y), (u, v) in zip(moved, corners):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coefficients = np.linalg.solve(np.array(rows), corners.ravel())
    return image.transform(image.size, Image.Transform.PERSPECTIVE, tuple(coefficients), Image.Resampling.BILINEAR,
                           fillcolor=fill)


def render_scan(digit, rng):
    """Flatbed scan of ruled paper: white, fine texture, blue or grey lines, sometimes a red margin."""
    height, width = canvas_size(rng, 1400, 2000)
    spacing = int(rng.integers(45, 80))
    paper = np.full((height, width), rng.uniform(242, 254), np.float32)
    paper += 2.5 * smooth_noise((height, width), 2, rng) + gaussian_noise(rng, 1.5, (height, width))
    paper = np.repeat(paper[:, :, None], 3, axis=2)
    line_colour = np.array(rng.choice([(150, 185, 235), (170, 170, 175), (120, 160, 220)]), np.float32)
    thickness = int(rng.integers(2, 5))
    offset = int(rng.integers(0, spacing))
    for y in range(offset, height, spacing):
        paper[y : y + thickness] = paper[y : y + thickness] * 0.3 + line_colour * 0.7
    if rng.random() < 0.5:
        x = int(width * rng.uniform(0.05, 0.15))
        paper[:, x : x + 3] = paper[:, x : x + 3] * 0.3 + np.array([225, 110, 115], np.float32) * 0.7
    ink_height = int(spacing * rng.uniform(1.3, 2.6))
    strokes = natural_strokes(digit, ink_height) if rng.random() < 0.5 else pen_strokes(
        digit, ink_height, max(2.0, ink_height * rng.uniform(0.05, 0.09)), rng)
    strokes = fit(slant(strokes, rng), (height, width))
    ink = rng.choice([(20, 20, 25), (25, 35, 120)])
    top, left = place((height, width), strokes.shape, rng, 0.15)
    image = composite(paper, strokes, ink, rng.uniform(0.85, 1.0), top, left)
    scan = Image.fromarray(to_uint8(image), "RGB").filter(ImageFilter.GaussianBlur(0.6))
    return scan


def _sketch_strokes(digit, rng, canvas_shape: tuple[int, int]):
    ink_height = int(min(canvas_shape) * rng.uniform(0.4, 0.85))
    strokes = pen_strokes(digit, ink_height, ink_height * rng.uniform(0.05, 0.13), rng)
    return fit(slant(strokes, rng, 6), canvas_shape)


def render_sketch_transparent(digit, rng):
    """Gradio sketchpad layer: RGBA, RGB all 0, the strokes only in alpha."""
    height, width = canvas_size(rng, 400, 800)
    strokes = _sketch_strokes(digit, rng, (height, width))
    top, left = place((height, width), strokes.shape, rng, 0.03)
    alpha = np.zeros((height, width), np.float32)
    alpha[top : top + strokes.shape[0], left : left + strokes.shape[1]] = strokes
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[:, :, 3] = to_uint8(alpha * 255)
    return Image.fromarray(rgba, "RGBA")


def render_sketch_white(digit, rng):
    """Drawing app canvas: black anti-aliased strokes on white RGB."""
    height, width = canvas_size(rng, 400, 800)
    strokes = _sketch_strokes(digit, rng, (height, width))
    top, left = place((height, width), strokes.shape, rng, 0.03)
    paper = np.full((height, width, 3), 255, np.float32)
    return Image.fromarray(to_uint8(composite(paper, strokes, (0, 0, 0), 1.0, top, left)), "RGB")


def render_thin_pen(digit, rng):
    """A fine pen (1–2 px strokes) on a large, slightly noisy grayscale scan."""
    height, width = canvas_size(rng, 1500, 2800)
    paper = np.full((height, width, 1), rng.uniform(225, 250), np.float32)
    paper += gaussian_noise(rng, rng.uniform(1, 4), (height, width, 1))
    ink_height = int(min(height, width) * rng.uniform(0.35, 0.7))
    strokes = fit(slant(pen_strokes(digit, ink_height, rng.uniform(1.0, 2.0), rng), rng), (height, width))
    top, left = place((height, width), strokes.shape, rng, 0.08)
    image = composite(paper, strokes, (30,), rng.uniform(0.8, 1.0), top, left)
    return Image.fromarray(to_uint8(image[:, :, 0]), "L")


def render_thick_marker(digit, rng):
    """A fat felt marker (strokes 14–22% of the digit height), black or coloured, on white paper."""
    height, width = canvas_size(rng, 500, 1200)
    ink_height = int(min(height, width) * rng.uniform(0.45, 0.8))
    strokes = slant(pen_strokes(digit, ink_height, ink_height * rng.uniform(0.14, 0.22), rng), rng)
    # a fat pen and the slant can make the ink wider than a narrow canvas: widen the paper to keep its margins
    height, width = max(height, int(strokes.shape[0] / 0.9) + 1), max(width, int(strokes.shape[1] / 0.9) + 1)
    paper = np.full((height, width, 3), rng.uniform(235, 255), np.float32)
    paper += gaussian_noise(rng, 2, (height, width, 1))
    ink = rng.choice([(10, 10, 10), (200, 30, 30), (20, 60, 180), (20, 120, 50)])
    top, left = place((height, width), strokes.shape, rng, 0.05)
    return Image.fromarray(to_uint8(composite(paper, strokes, ink, 1.0, top, left)), "RGB")


def render_small(digit, rng):
    """A thumbnail 16–40 px: a digit photographed or cropped small."""
    side = int(rng.integers(16, 41))
    height, width = (side, int(side * rng.uniform(0.7, 1.3)))
    scale = 8
    ink_height = int(height * scale * rng.uniform(0.6, 0.9))
    strokes = slant(natural_strokes(digit, ink_height), rng, 6)
    if strokes.shape[1] > width * scale * 0.95:
        width = int(strokes.shape[1] / scale / 0.9) + 1
    paper = np.full((height * scale, width * scale, 1), rng.uniform(190, 255), np.float32)
    top, left = place(paper.shape[:2], strokes.shape, rng, 0.03)
    big = composite(paper, strokes, (rng.uniform(0, 60),), rng.uniform(0.8, 1.0), top, left)
    small = Image.fromarray(to_uint8(big[:, :, 0]), "L").resize((width, height), Image.Resampling.BOX)
    noisy = np.asarray(small, np.float32) + gaussian_noise(rng, 2, (height, width))
    return Image.fromarray(to_uint8(noisy), "L")


def render_off_centre(digit, rng):
    """A small digit near a corner of a 1000-px photo-like image."""
    height, width = canvas_size(rng, 1000, 1000)
    ink_height = int(min(height, width) * rng.uniform(0.06, 0.15))
    strokes = slant(natural_strokes(digit, ink_height), rng)
    paper = np.full((height, width, 3), rng.uniform(215, 250), np.float32)
    paper *= lighting((height, width), rng, 0.3)[:, :, None]
    paper += gaussian_noise(rng, rng.uniform(1.5, 4), (height, width, 1))
    margin_y, margin_x = (int(s * rng.uniform(0.03, 0.2)) for s in (height, width))
    top = margin_y if rng.random() < 0.5 else height - strokes.shape[0] - margin_y
    left = margin_x if rng.random() < 0.5 else width - strokes.shape[1] - margin_x
    image = composite(paper, strokes, (30, 30, 40), rng.uniform(0.8, 1.0), top, left)
    return Image.fromarray(to_uint8(image), "RGB")


def render_dark_background(digit, rng):
    """Chalk on a blackboard: light, grainy strokes on a dark smudged board."""
    height, width = canvas_size(rng, 600, 1400)
    board = np.array(rng.choice([(35, 55, 45), (30, 32, 35), (45, 50, 60)]), np.float32)
    paper = np.ones((height, width, 3), np.float32) * board
    paper += (6 * smooth_noise((height, width), 120, rng) + gaussian_noise(rng, 3, (height, width)))[:, :, None]
    ink_height = int(min(height, width) * rng.uniform(0.4, 0.75))
    strokes = natural_strokes(digit, ink_height) if rng.random() < 0.5 else pen_strokes(
        digit, ink_height, ink_height * rng.uniform(0.06, 0.12), rng)
    strokes = fit(slant(strokes, rng), (height, width))
    grain = np.clip(0.75 + 0.25 * rng.standard_normal(strokes.shape), 0, 1)
    top, left = place((height, width), strokes.shape, rng, 0.06)
    chalk = (rng.uniform(215, 245),) * 2 + (rng.uniform(195, 240),)
    image = composite(paper, strokes * grain, chalk, rng.uniform(0.75, 0.95), top, left)
    board_image = Image.fromarray(to_uint8(image), "RGB").filter(ImageFilter.GaussianBlur(0.7))
    return board_image


def render_sheet_on_desk(digit, rng):
    """Phone photo of a note lying on a desk: a sheet covering 15–60% of the picture, turned by up to 25°, on a
    darker wood-grained or plain surface; the camera as for ``photo``."""
    height, width = canvas_size(rng, 1000, 2000)
    desk_colour = rng.uniform(40, 150) * np.array([1, rng.uniform(0.75, 0.95), rng.uniform(0.5, 0.9)])
    desk = np.ones((height, width, 3), np.float32) * desk_colour.astype(np.float32)
    grain = smooth_noise((height // 8, width), rng.uniform(4, 30), rng)  # stretched along the boards
    desk += rng.uniform(3, 12) * np.asarray(Image.fromarray(grain).resize((width, height)), np.float32)[:, :, None]
    area = rng.uniform(0.15, 0.6) * height * width
    aspect = rng.uniform(0.7, 1.4)
    sheet_width = min(int(math.sqrt(area * aspect)), int(0.75 * width))
    sheet_height = min(int(area / sheet_width), int(0.75 * height))
    paper = np.ones((sheet_height, sheet_width, 3), np.float32) * rng.uniform(215, 250)
    ink_height = int(min(sheet_height, sheet_width) * rng.uniform(0.4, 0.7))
    strokes = natural_strokes(digit, ink_height) if rng.random() < 0.6 else pen_strokes(
        digit, ink_height, ink_height * rng.uniform(0.05, 0.1), rng)
    strokes = fit(slant(strokes, rng), (sheet_height, sheet_width))
    top, left = place((sheet_height, sheet_width), strokes.shape, rng, 0.1)
    ink = rng.choice([(25, 25, 30), (20, 30, 110)])
    sheet = Image.fromarray(to_uint8(composite(paper, strokes, ink, rng.uniform(0.8, 1.0), top, left)), "RGB")
    angle = rng.uniform(-25, 25)
    sheet_mask = Image.new("L", sheet.size, 255).rotate(angle, Image.Resampling.BILINEAR, expand=True)
    sheet = sheet.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    if sheet.width >= width or sheet.height >= height:  # turned, it no longer fits: shrink it
        factor = 0.95 * min(width / sheet.width, height / sheet.height)
        size = (int(sheet.width * factor), int(sheet.height * factor))
        sheet, sheet_mask = sheet.resize(size, Image.Resampling.BOX), sheet_mask.resize(size, Image.Resampling.BOX)
    photo = Image.fromarray(to_uint8(desk), "RGB")
    photo.paste(sheet, (int(rng.integers(0, width - sheet.width + 1)), int(rng.integers(0, height - sheet.height + 1))),
                sheet_mask)
    return phone_camera(np.asarray(photo, np.float32), rng, tuple(int(c) for c in desk_colour))


def render_lined_paper(digit, rng):
    """Phone photo, close up, of a digit written on lined notebook paper filling the picture: the digit sits on a
    ruled line, which its strokes may cross, the lines are thick in pixels and a little askew."""
    height, width = canvas_size(rng, 200, 900)
    margin = int(0.15 * max(height, width))  # paper beyond the picture: the camera's turn shows no desk
    full = (height + 2 * margin, width + 2 * margin)
    spacing = min(height, width) * rng.uniform(0.22, 0.4)
    paper_colour = rng.uniform(215, 250) * np.array([1, rng.uniform(0.95, 1.0), rng.uniform(0.88, 1.0)])
    paper = np.ones((*full, 3), np.float32) * paper_colour.astype(np.float32)
    paper += 3 * smooth_noise(full, 20, rng)[:, :, None]
    line_colour = np.array(rng.choice([(120, 160, 220), (150, 185, 235), (140, 140, 150)]), np.float32)
    thickness = max(1, round(spacing * rng.uniform(0.02, 0.06)))
    rows = np.arange(rng.uniform(0, spacing), full[0], spacing).astype(int)
    for y in rows:
        paper[y : y + thickness] = paper[y : y + thickness] * 0.35 + line_colour * 0.65
    if rng.random() < 0.3:
        x = margin + int(width * rng.uniform(0.05, 0.15))
        paper[:, x : x + thickness] = paper[:, x : x + thickness] * 0.35 + np.array([225, 110, 115], np.float32) * 0.65
    ink_height = int(spacing * rng.uniform(0.6, 1.3))
    strokes = natural_strokes(digit, ink_height) if rng.random() < 0.5 else pen_strokes(
        digit, ink_height, max(1.5, ink_height * rng.uniform(0.05, 0.1)), rng)
    strokes = fit(slant(strokes, rng), (int(0.8 * height), int(0.8 * width)))
    top, left = place((height, width), strokes.shape, rng, 0.1)
    on_lines = [y - margin for y in rows
                if 0.1 * height + strokes.shape[0] <= y - margin + 0.25 * spacing < 0.9 * height]
    if on_lines:  # the digit's foot on a line, or a little below or above it
        foot = int(rng.choice(on_lines) + rng.uniform(-0.1, 0.25) * spacing)
        top = min(max(foot - strokes.shape[0], 0), height - strokes.shape[0])
    ink = rng.choice([(25, 25, 30), (20, 30, 110), (60, 60, 65), (30, 30, 80)])
    scene = composite(paper, strokes, ink, rng.uniform(0.75, 1.0), margin + top, margin + left)
    photo = phone_camera(scene, rng, tuple(int(c) for c in paper_colour * 0.7))
    return photo.crop((margin, margin, margin + width, margin + height))


RENDERERS = {
    "photo": render_photo,
    "scan": render_scan,
    "sketch_transparent": render_sketch_transparent,
    "sketch_white": render_sketch_white,
    "thin_pen": render_thin_pen,
    "thick_marker": render_thick_marker,
    "small": render_small,
    "off_centre": render_off_centre,
    "dark_background": render_dark_background,
    "sheet_on_desk": render_sheet_on_desk,
    "lined_paper": render_lined_paper,
}


def render(digit: np.ndarray, kind: str, seed: int = 0) -> Image.Image:
    """One realistic image of ``kind`` from a 28×28 MNIST digit (uint8 0..255 or float 0..1, ink high)."""
    digit = np.asarray(digit, dtype=np.float32)
    if digit.max() > 1:
        digit = digit / 255
    rng = np.random.default_rng([SEED, KINDS.index(kind), seed])
    return RENDERERS[kind](digit, rng)


def extension(kind: str) -> str:
    return ".jpg" if kind in ("photo", "lined_paper") else ".png"


def balanced_indices(labels: np.ndarray, per_kind: int, kind: str) -> list[int]:
    """``per_kind`` indices into ``labels``, the same number of each digit, chosen per kind (deterministic)."""
    rng = np.random.default_rng([SEED, KINDS.index(kind), 999])
    chosen = []
    for digit in range(10):
        candidates = np.flatnonzero(labels == digit)
        count = per_kind // 10 + (1 if digit < per_kind % 10 else 0)
        chosen += rng.choice(candidates, size=count, replace=False).tolist()
    return chosen


def stamp() -> str:
    """The version of this module, which a generated kind folder records."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16] + "\n"


def is_stale(folder: Path) -> bool:
    """Whether ``folder`` was generated by another version of this module (its drawings may differ).

    A folder without the stamp is left alone: it may hold images that were not generated here.
    """
    marker = folder / STAMP_FILE
    return marker.is_file() and marker.read_text() != stamp()


def digit_pool(data_root: Path, digits: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of the MNIST test digits, or of the held-out validation digits of the training set."""
    images, labels = mnist.load(data_root, train=False) if digits == "test" else mnist.load_validation(data_root)
    return images.numpy(), labels.numpy()


def generate(output: Path, data_root: Path, per_kind: int, kinds, digits: str = "test") -> None:
    """Draw ``per_kind`` images of each kind from the ``digits`` pool (``test`` or ``validation``) into
    ``output/<kind>/``, each named by its digit's index in that pool. A kind folder this module drew (stamped) is
    replaced and a new one stamped; into a folder of someone's own images it only adds, and leaves it unstamped."""
    images, labels = digit_pool(data_root, digits)
    for kind in kinds:
        kind_folder = output / kind
        ours = not kind_folder.exists() or (kind_folder / STAMP_FILE).is_file() or not any(kind_folder.iterdir())
        if ours:
            shutil.rmtree(kind_folder, ignore_errors=True)
            kind_folder.mkdir(parents=True)
            (kind_folder / STAMP_FILE).write_text(UNFINISHED)  # stale until every image is drawn
        for index in balanced_indices(labels, per_kind, kind):
            folder = kind_folder / str(labels[index])
            folder.mkdir(parents=True, exist_ok=True)
            image = render(images[index], kind, seed=index)
            path = folder / f"{index}{extension(kind)}"
            if extension(kind) == ".jpg":
                image.save(path, quality=95)
            else:
                image.save(path, compress_level=1)
        if ours:
            (kind_folder / STAMP_FILE).write_text(stamp())
        print(f"{kind}: {per_kind} images in {kind_folder}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="folder holding MNIST/raw")
    parser.add_argument("--per-kind", type=int, default=300, help="images per kind (balanced over the 10 digits)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--digits", choices=("test", "validation"), default="test",
                        help="MNIST digits to draw: test (the benchmark) or held-out validation (a dev set)")
    arguments = parser.parse_args()
    generate(arguments.output, arguments.data_root, arguments.per_kind, arguments.kinds, arguments.digits)


if __name__ == "__main__":
    main()
