"""Any real image of a handwritten digit → the 28×28 input the model expects (MNIST's own normalisation).

The pipeline, one function per step:

* :func:`hdr.loading.load_image` — read a path, bytes, PIL image or numpy array; apply EXIF orientation;
  refuse empty, corrupt, non-image and oversized inputs with a clear :class:`InvalidImageError`.
* :func:`ink_map` — where the ink is (float H×W, ink 1, paper 0): ink from the alpha channel of
  transparent canvases; otherwise grayscale, uneven lighting removed by a robust polynomial fit of
  the paper, ink polarity decided (dark pen on paper or chalk on a board), noise-aware threshold,
  ruled lines (:mod:`hdr.ruled_paper`) and specks removed.
* :func:`find_ink` — the ink map of the image (a note photographed on a desk: of the sheet alone,
  :mod:`hdr.sheet`), looked at again more closely where the writing is small in a big image.
* :func:`to_model_input` — crop to the ink, normalise the stroke width, fit the longer side in
  20 px keeping the aspect ratio (anti-aliased) and centre the centre of mass in 28×28, as MNIST does.
* :func:`preprocess` — all of the above on a downscaled working copy (for speed), plus the ink box
  in source pixels and whether the ink stands in pieces side by side like a number (:func:`ink_columns`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from hdr.loading import InvalidImageError, normalise_mode, open_image
from hdr.ruled_paper import remove_ruled_lines
from hdr.sheet import ShadowedPage, find_sheet

WORKING_MAX_SIDE = 640  # ink is found on a copy no larger than this...
WORKING_MIN_SIDE = 128  # ...and no smaller than this (tiny images are upscaled first)
SMALL_DIGIT = 48  # a digit smaller than this in a reduced working copy is looked at again more closely

MNIST_BOX = 20  # MNIST fits the digit's longer side in 20 px...
MNIST_SIDE = 28  # ...and centres its centre of mass in a 28×28 image
MNIST_CENTRE = 14.0  # centre of mass of MNIST digits, in pixel indices (measured on the test set)
STROKE_WIDTH = 2.6  # median MNIST stroke width in pixels of the 20-px box
THIN_STROKE, FAT_STROKE = 1.9, 4.4  # strokes outside this range are re-stroked towards STROKE_WIDTH
CROP_WORKING_SIDE = 160  # the ink crop is resampled to about this size for stroke-width work
SHADING_WINDOW = 0.3  # × the longer side: wider than any stroke; lighter or darker paper at least this wide is light
SHADING_SIDE = 160  # such paper is looked for on a copy this size first (most pictures have none), then in full
FAINT = 0.12  # the faint ink threshold (hysteresis), as a fraction of the peak ink signal
WIDE_INK_ASPECT = 1.0  # one piece of ink this wide for its height may be touching digits; at 0.6, 159 of 160
# touching pairs were caught instead of 119 ("11", "14", "71" can be narrower), but the REST route served 17% fewer
# predictions per second (the line reader ran on 83% of its digits instead of 11%)
MAX_DIGIT_ASPECT = 3.0  # ink wider than this × its height is not one digit: none of MNIST's 70,000 is over 2.5×
SOLID_INK = 0.5  # ink counted when telling pieces apart (a faint ruled line left under a number would join them)
Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)
NO_INK = "No ink found: the image looks empty. Write or draw a digit with clear contrast."


class BlankImageError(InvalidImageError):
    """The image is readable but holds no ink."""


@dataclass
class Preprocessed:
    """The model input and where the ink was found."""

    model_input: np.ndarray  # 28×28 float32 in [0, 1], ink high
    ink_box: Box  # in source pixels
    several_digits: bool = False  # the ink stands in separate pieces side by side (see :func:`ink_columns`)
    # the ink map cropped to the ink, kept when it is one piece at least WIDE_INK_ASPECT times as wide as it is
    # tall: digits that touch look like that, and the recognizer asks its line reader how many digits it holds
    wide_ink: np.ndarray | None = None
    # one piece over MAX_DIGIT_ASPECT times wider than tall: a dash or a line, not a digit (measured on the ink map:
    # ink_box, rounded to source pixels, is too coarse for a small image)
    too_wide: bool = False


# ----------------------------------------------------------------------------------------- ink map


def ink_map(image: Image.Image, single_digit: bool = True, zoom: float = 1.0) -> np.ndarray:
    """Where the ink is: float32 H×W in [0, 1], ink high, paper exactly 0.

    Transparent canvases (mostly transparent pixels) give their ink in the alpha channel. Otherwise the
    image is turned to grayscale, the paper (with its lighting gradient) is fitted and removed, the
    polarity is decided from which tail of the residual is heavier (dark ink on light paper, or light
    chalk on a dark board), and a noise-aware threshold keeps the strokes. Long thin ruled lines (not on a
    transparent canvas, which holds strokes only) and regions along the image edge are removed; for a
    ``single_digit``, so are blobs small next to the largest or far from it (pass ``False`` for numbers, whose
    decimal points and far digits must stay).
    ``zoom`` says how many times finer than a working copy of the whole page ``image`` is (a close look at
    part of it): ruled lines are that many times thicker.
    """
    luminance, alpha = _luminance_and_alpha(image)
    canvas = alpha is not None and np.mean(alpha < 0.5) > 0.5
    if canvas:
        signal, noise = alpha, 0.0  # a transparent canvas: the strokes are the opaque pixels
    else:
        if alpha is not None:  # mostly opaque with transparent holes: fill them with the paper colour
            paper = np.median(luminance[alpha >= 0.5])
            luminance = luminance * alpha + paper * (1 - alpha)
        signal, noise = _ink_signal(luminance)
    smooth = ndi.gaussian_filter(signal, 1.0)
    thresholds = _thresholds(smooth, noise)
    if thresholds is not None:
        rough = smooth > thresholds[0]
        inside = _remove_edge_regions(rough)
        # ruled lines may join the writing to the edge: look again without them (a canvas has none)
        if not canvas and not np.array_equal(inside, rough):
            inside = _remove_edge_regions(remove_ruled_lines(rough, smooth, thresholds[0] / 2, zoom))
        if inside.any():  # the desk around a photographed sheet may be darker than the ink: measure the ink inside
            thresholds = _thresholds(smooth, noise, peak=float(smooth[inside].max()))
    if thresholds is None:
        return np.zeros(signal.shape, np.float32)
    faint, clear = thresholds
    mask = smooth > faint
    if not canvas:  # a transparent canvas holds strokes only: no paper, so no ruled lines
        mask = remove_ruled_lines(mask, smooth, faint / 2, zoom)
    mask = _hysteresis(mask, smooth > clear)
    mask = _remove_edge_regions(mask)
    if single_digit:
        mask = _remove_specks(mask)
    if not mask.any():
        return np.zeros(signal.shape, np.float32)
    level = max(float(np.median(signal[mask])), 1e-3)  # the ink level that counts as fully inked
    keep = ndi.binary_dilation(mask, iterations=1)  # keep the anti-aliased edge of every stroke
    return np.where(keep, np.clip(signal / level, 0, 1), 0).astype(np.float32)


def _luminance_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    image = normalise_mode(image)
    alpha = None
    if image.mode in ("LA", "RGBA"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255
        if alpha.min() > 0.98:
            alpha = None
    luminance = np.asarray(image.convert("L"), dtype=np.float32) / 255
    return luminance, alpha


def _ink_signal(luminance: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink strength (paper 0) and the noise level, with the lighting removed and the polarity decided.

    Where the paper is lighter or darker than its fitted surface over regions wider than any stroke (a shadow across
    the page, :func:`_shading`), that is light, not ink: it does not count towards the polarity, and dark ink counts
    relative to the paper under it, so that ink in a shadow is as strong as ink in the light.
    """
    surface = _paper_background(luminance)
    residual = luminance - surface
    # Noise level from the quieter quarter of the pixels (robust even when ink covers half the image):
    # for Gaussian noise the 25th percentile of |residual| is 0.3186 σ.
    noise = float(np.percentile(np.abs(residual[::2, ::2]), 25)) / 0.3186
    floor = 3 * noise + 0.02
    shading = _shading(residual, floor)
    dark, light = -residual, residual
    if shading is not None:
        paper = surface + shading
        dark = (paper - luminance) / np.maximum(paper, 0.05) * float(np.median(paper))
        light = residual - np.clip(shading, 0, None)
    height, width = residual.shape
    centre = slice(height // 10, height - height // 10), slice(width // 10, width - width // 10)  # not the desk around
    is_dark = np.clip(dark[centre] - floor, 0, None).sum() >= np.clip(light[centre] - floor, 0, None).sum()
    return np.clip(dark if is_dark else light, 0, None), noise


def _shading(residual: np.ndarray, floor: float) -> np.ndarray | None:
    """How much lighter (> 0) or darker (< 0) than its fitted surface the paper is, where it is so by more than
    ``floor`` over a region wider than SHADING_WINDOW that reaches the picture's edge (a shadow falls from outside the
    picture; a blob of ink lies inside it), or ``None`` where it is nowhere. Looked for on a small copy first."""
    if max(residual.shape) > SHADING_SIDE:
        small = Image.fromarray(residual).resize(_fit(residual.shape[1], residual.shape[0], SHADING_SIDE),
                                                 Image.Resampling.BOX)
        if _wide_parts(np.asarray(small), floor) is None:
            return None
    return _wide_parts(residual, floor)


def _wide_parts(residual: np.ndarray, floor: float) -> np.ndarray | None:
    """The positive and negative parts of ``residual`` that cover regions wider than SHADING_WINDOW (grey openings
    leave those, not the strokes), in the regions that reach the picture's edge and exceed ``floor`` somewhere."""
    window = max(3, round(SHADING_WINDOW * max(residual.shape)))
    if not ndi.minimum_filter((np.abs(residual) > floor).view(np.uint8), window).any():
        return None  # no window beyond the floor throughout: the openings leave nothing that exceeds it

    def opening(values: np.ndarray) -> np.ndarray:
        return ndi.maximum_filter(ndi.minimum_filter(values, window), window)

    wide = opening(np.clip(residual, 0, None)) - opening(np.clip(-residual, 0, None))
    regions, _ = ndi.label(wide != 0)
    border = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    strong = np.unique(regions[np.abs(wide) > floor])
    keep = np.intersect1d(border[border > 0], strong)
    return np.where(np.isin(regions, keep), wide, 0).astype(np.float32) if keep.size else None


def _paper_background(luminance: np.ndarray, thumb_side: int = 48, degree: int = 2) -> np.ndarray:
    """The paper's brightness everywhere: a polynomial surface fitted robustly (ink is left out as outliers)."""
    height, width = luminance.shape
    thumb = np.asarray(
        Image.fromarray(luminance).resize(_fit(width, height, thumb_side), Image.Resampling.BOX), dtype=np.float32
    )
    design = _design_matrix(thumb.shape, degree)
    values = thumb.ravel()
    inliers = _near_the_mode(values)  # start from a flat paper: the ink is left out
    for _ in range(4):
        coefficients = _least_squares(design[inliers], values[inliers])
        residual = values - design @ coefficients
        spread = 1.4826 * np.median(np.abs(residual[inliers])) + 0.01
        new_inliers = np.abs(residual) < 2.5 * spread
        if new_inliers.sum() < design.shape[1] * 3:
            break
        inliers = new_inliers
    paper_range = values[inliers].min(), values[inliers].max()  # no wild extrapolation beyond the paper seen
    surface = np.clip(design @ coefficients, *paper_range).reshape(thumb.shape).astype(np.float32)
    return np.asarray(Image.fromarray(surface).resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


@functools.lru_cache(maxsize=64)
def _design_matrix(shape: tuple[int, int], degree: int) -> np.ndarray:
    """Polynomial terms of the pixel coordinates (scaled to [-1, 1]) of an image of ``shape``, one row per pixel."""
    ty, tx = np.mgrid[0 : shape[0], 0 : shape[1]]
    terms = _poly_terms((tx + 0.5) / shape[1] * 2 - 1, (ty + 0.5) / shape[0] * 2 - 1, degree)
    design = np.stack([t.ravel() for t in terms], axis=1)
    design.flags.writeable = False  # shared between calls
    return design


def _least_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares coefficients via the (slightly regularised) normal equations: a 6×6 solve, far cheaper
    than ``np.linalg.lstsq`` under multi-threaded BLAS for such a small system."""
    normal = design.T @ design + 1e-6 * np.eye(design.shape[1], dtype=design.dtype)
    return np.linalg.solve(normal, design.T @ values)


def _near_the_mode(values: np.ndarray) -> np.ndarray:
    """The values close to the most common one (the paper, even when ink covers a large part of the image)."""
    histogram, edges = np.histogram(values, bins=64, range=(0.0, 1.0))
    peak = int(np.argmax(ndi.uniform_filter1d(histogram.astype(float), 3)))
    mode = (edges[peak] + edges[peak + 1]) / 2
    distance = np.abs(values - mode)
    return distance <= 1.5 * np.median(distance) + 0.01


def _poly_terms(x, y, degree: int) -> list:
    return [x**i * y**j for i in range(degree + 1) for j in range(degree + 1 - i)]


def _thresholds(smooth: np.ndarray, noise: float, peak: float | None = None) -> tuple[float, float] | None:
    """The faint and the clear ink thresholds of a smoothed ink signal (relative to its ``peak``, by default
    its maximum), or None when there is no ink at all."""
    peak = float(smooth.max()) if peak is None else peak
    smooth_noise = noise / 3  # a σ=1 Gaussian averages about 12 pixels of independent noise
    if peak < max(0.04, 6 * smooth_noise):
        return None
    return max(3 * smooth_noise, FAINT * peak, 0.015), max(4 * smooth_noise, 0.4 * peak, 0.02)


def _hysteresis(faint: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """The faint regions that hold clearly inked pixels: a hair-thin stroke that fades in places after
    downscaling stays in one piece, while faint texture on its own is dropped."""
    labels, count = ndi.label(faint, structure=np.ones((3, 3)))
    holds_clear = np.zeros(count + 1, bool)
    holds_clear[np.unique(labels[clear & faint])] = True
    holds_clear[0] = False
    return holds_clear[labels]


def _remove_edge_regions(mask: np.ndarray) -> np.ndarray:
    """Drop regions lying along the image edge (the desk around a photographed sheet, a shadow, the scanner lid).

    A stroke that reaches the edge touches it over about its width; these regions touch it over a long stretch.
    """
    labels, count = ndi.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return mask
    band = max(1, round(0.02 * min(mask.shape)))  # the edge zone: a sliver of desk may stop short of the very edge
    frame = np.concatenate([labels[:band].ravel(), labels[-band:].ravel(),
                            labels[band:-band, :band].ravel(), labels[band:-band, -band:].ravel()])
    contact = np.bincount(frame, minlength=count + 1) / band  # about the length along the edge
    contact[0] = 0
    shortest = 0.08 * min(mask.shape)  # the limit is at least this long
    if contact.max() <= shortest:
        return mask  # nothing lies along the edge: spare the stroke-width measurement
    # Ruled lines joined by a stroke touch the edge in several short stretches: count the longest on each side.
    sides = [labels[:band], labels[-band:], labels[:, :band].T, labels[:, -band:].T]  # each band × its length
    for region in np.flatnonzero(contact > shortest):
        contact[region] = min(contact[region], sum(_longest_run((side == region).any(axis=0)) for side in sides))
    along_edge = contact > max(3 * stroke_width(mask), shortest)
    if not along_edge.any() or along_edge[1:].all():
        return mask  # nothing along the edge, or nothing else (then it is the drawing itself)
    return mask & ~along_edge[labels]


def _longest_run(flags: np.ndarray) -> int:
    """The length of the longest run of True in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.view(np.int8), [0]])))
    return int(np.max(edges[1::2] - edges[::2], initial=0))


def _remove_specks(mask: np.ndarray) -> np.ndarray:
    """Drop small blobs: dust, noise, bits of texture. Parts near the main stroke may be small; far ones may not."""
    labels, count = ndi.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    areas = np.bincount(labels.ravel())[1:]
    main = int(areas.argmax())
    boxes = ndi.find_objects(labels)
    top, bottom = boxes[main][0].start, boxes[main][0].stop
    left, right = boxes[main][1].start, boxes[main][1].stop
    margin_y, margin_x = 0.3 * (bottom - top) + 2, 0.3 * (right - left) + 2
    keep = np.zeros(count + 1, bool)
    for index, (area, box) in enumerate(zip(areas, boxes), start=1):
        near = (
            box[0].stop > top - margin_y and box[0].start < bottom + margin_y
            and box[1].stop > left - margin_x and box[1].start < right + margin_x
        )
        keep[index] = area >= 0.15 * areas[main] or (near and area >= 0.02 * areas[main])
    return keep[labels]


def ink_columns(ink: np.ndarray) -> int:
    """How many pieces of ink stand side by side: 1 for a digit, more for a number or a digit beside a stray mark
    (0 when no ink is above ``SOLID_INK``).

    Only pieces at least 15% of the largest one's area and 40% of the ink's height count (a detached bar or a
    dot does not); pieces overlapping horizontally by more than 20% of the narrower one stand in one column.
    """
    mask = ink > SOLID_INK
    labels, count = ndi.label(mask, structure=np.ones((3, 3)))
    if count < 2:
        return count
    areas = np.bincount(labels.ravel())[1:]
    rows = np.flatnonzero(mask.any(axis=1))
    ink_height = rows[-1] - rows[0] + 1
    spans = sorted((box[1].start, box[1].stop) for area, box in zip(areas, ndi.find_objects(labels))
                   if area >= 0.15 * areas.max() and box[0].stop - box[0].start >= 0.4 * ink_height)
    columns: list[list[int]] = []
    for left, right in spans:
        if columns and columns[-1][1] - left > 0.2 * min(right - left, columns[-1][1] - columns[-1][0]):
            columns[-1][1] = max(columns[-1][1], right)
        else:
            columns.append([left, right])
    return len(columns)


# ------------------------------------------------------------------------------------- model input


def ink_bounding_box(ink: np.ndarray, level: float = 0.05) -> Box | None:
    """(left, top, right, bottom) of the pixels above ``level`` (right/bottom exclusive), or None."""
    rows = np.flatnonzero((ink > level).any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero((ink > level).any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def to_model_input(ink: np.ndarray) -> np.ndarray:
    """An ink map → the 28×28 MNIST-style input (float32 in [0, 1]).

    Crops to the ink, brings the stroke width towards MNIST's, fits the longer side in 20 px keeping
    the aspect ratio (anti-aliased) and puts the centre of mass at MNIST's. Raises
    :class:`BlankImageError` when there is no ink.
    """
    ink = np.asarray(ink, dtype=np.float32)
    box = ink_bounding_box(ink)
    if box is None or ink.sum() < 1.0:
        raise BlankImageError(NO_INK)
    left, top, right, bottom = box
    crop = _resample_crop(ink[top:bottom, left:right])
    crop = _normalise_stroke_width(crop)
    patch = _fit_in_box(crop, MNIST_BOX)
    return _centre_by_mass(patch)


def _resample_crop(crop: np.ndarray) -> np.ndarray:
    """Bring the crop's longer side to about CROP_WORKING_SIDE: block maximum when larger (keeps thin strokes),
    bilinear when smaller."""
    long_side = max(crop.shape)
    if long_side > 2 * CROP_WORKING_SIDE:
        factor = long_side // CROP_WORKING_SIDE
        pad = [(0, -n % factor) for n in crop.shape]
        padded = np.pad(crop, pad)
        return padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).max(axis=(1, 3))
    if long_side < CROP_WORKING_SIDE:
        scale = CROP_WORKING_SIDE / long_side
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        padded = np.pad(crop, 1)  # so the edges fade out instead of being stretched
        resized = Image.fromarray(padded).resize(
            (size[0] + 2 * round(scale), size[1] + 2 * round(scale)), Image.Resampling.BILINEAR
        )
        return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)
    return crop


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a boolean stroke mask (twice the area over the boundary length)."""
    boundary = mask & ~ndi.binary_erosion(mask)
    return 2.0 * mask.sum() / max(int(boundary.sum()), 1)


def _normalise_stroke_width(crop: np.ndarray) -> np.ndarray:
    """Thicken hair-thin pen strokes and thin fat marker strokes towards MNIST's width (relative to the digit size)."""
    mask = crop > 0.5
    if mask.sum() < 4:
        return crop
    box = ink_bounding_box(crop, 0.5)
    pixels_per_mnist_pixel = max(box[2] - box[0], box[3] - box[1]) / MNIST_BOX
    width = stroke_width(mask) / pixels_per_mnist_pixel
    if width < THIN_STROKE:
        radius = (STROKE_WIDTH - width) / 2 * pixels_per_mnist_pixel
        grown = ndi.distance_transform_edt(~mask) <= radius
        return np.maximum(crop, grown.astype(np.float32))
    if width > FAT_STROKE:
        radius = (width - STROKE_WIDTH) / 2 * pixels_per_mnist_pixel
        distance = ndi.distance_transform_edt(mask)
        shape = topology(mask)
        for depth in (radius, radius / 2):  # thin less where thinning fully would change the digit
            shrunk = distance > depth
            if shrunk.sum() >= 0.25 * mask.sum() and topology(shrunk) == shape:
                return shrunk.astype(np.float32)
    return crop


def topology(mask: np.ndarray) -> tuple[int, int]:
    """The number of strokes (8-connected pieces) and of loops (holes) of a stroke mask: what thinning a fat
    stroke must not change (an 8 whose loop opens reads as a 3, a 6 cut in two as a 1)."""
    strokes = ndi.label(mask, structure=np.ones((3, 3)))[1]
    background = ndi.label(np.pad(~mask, 1))[1]  # 4-connected; the padding joins everything outside
    return strokes, background - 1


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is ``side``, at least 1 px each."""
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit_in_box(crop: np.ndarray, side: int) -> np.ndarray:
    box = ink_bounding_box(crop)
    if box is None:
        raise BlankImageError(NO_INK)
    crop = crop[box[1] : box[3], box[0] : box[2]]
    size = _fit(crop.shape[1], crop.shape[0], side)
    resized = Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS)  # anti-aliased, as MNIST
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)


def _centre_by_mass(patch: np.ndarray) -> np.ndarray:
    """Place ``patch`` in a 28×28 image with its centre of mass at MNIST's (integer shift, as MNIST)."""
    height, width = patch.shape
    if patch.sum() <= 0:
        raise BlankImageError(NO_INK)
    centre_y, centre_x = ndi.center_of_mass(patch)
    top = int(np.clip(round(MNIST_CENTRE - centre_y), 0, MNIST_SIDE - height))
    left = int(np.clip(round(MNIST_CENTRE - centre_x), 0, MNIST_SIDE - width))
    output = np.zeros((MNIST_SIDE, MNIST_SIDE), np.float32)
    output[top : top + height, left : left + width] = patch
    return output


# ---------------------------------------------------------------------------------------- pipeline


def working_copy(image: Image.Image, max_side: int = WORKING_MAX_SIDE) -> Image.Image:
    """``image`` resized so its longer side is within [WORKING_MIN_SIDE, ``max_side``]."""
    long_side = max(image.size)
    if WORKING_MIN_SIDE <= long_side <= max_side:
        return image
    size = _fit(*image.size, max_side if long_side > max_side else WORKING_MIN_SIDE)
    if long_side < WORKING_MIN_SIDE:
        return image.resize(size, Image.Resampling.BICUBIC)
    factor = long_side // max_side
    if factor >= 2:  # a fast integer box reduction first, then the exact size
        image = image.reduce(factor)
    return image.resize(size, Image.Resampling.BOX)


def _closer_side(region: Box, ink_size: float) -> int:
    """The longer side of the closer look at ``region`` of an image, where the writing is ``ink_size`` px in size:
    enough for SMALL_DIGIT px of writing (a long number fills a wide, low region) but no larger than the region and
    no more pixels than a working copy."""
    width, height = region[2] - region[0], region[3] - region[1]
    side = max(width, height)
    wanted = math.ceil(side * SMALL_DIGIT / max(ink_size, 1.0))
    within_area = int(side * WORKING_MAX_SIDE / math.sqrt(width * height))
    return max(WORKING_MAX_SIDE, min(side, wanted, within_area))


def preprocess(source) -> Preprocessed:
    """``source`` (anything :func:`hdr.loading.load_image` takes) → the model input, the ink box in source pixels, and
    whether the ink looks like several digits side by side (or one wide piece, which may be touching digits)."""
    image, (source_width, source_height) = open_image(source, draft_side=WORKING_MAX_SIDE)
    found = find_ink(image)
    box = ink_bounding_box(found.ink)
    if box is None:
        raise BlankImageError(NO_INK)
    # ink-map pixels → image pixels → source pixels (the image may be a reduced JPEG draft)
    image_left, image_top, image_right, image_bottom = to_image_box(box, found.ink.shape, found.region)
    to_source_x, to_source_y = source_width / image.width, source_height / image.height
    ink_box = (
        max(0, math.floor(image_left * to_source_x)),
        max(0, math.floor(image_top * to_source_y)),
        min(source_width, math.ceil(image_right * to_source_x)),
        min(source_height, math.ceil(image_bottom * to_source_y)),
    )
    ink = found.upright()  # the shape of the writing, as it was written
    model_input = to_model_input(ink)
    left, top, right, bottom = ink_bounding_box(ink)
    columns = ink_columns(ink)
    height = bottom - top
    wide_ink = None
    # with blank margins: a stroke across a tight crop looks ruled
    if columns == 1 and right - left >= WIDE_INK_ASPECT * height:
        wide_ink = np.pad(ink[top:bottom, left:right], ((0, 0), (height // 2, height // 2)))
    too_wide = columns < 2 and right - left > MAX_DIGIT_ASPECT * height
    return Preprocessed(model_input, ink_box, several_digits=columns >= 2, wide_ink=wide_ink, too_wide=too_wide)


def to_image_box(box: Box, ink_shape: tuple[int, int], region: Box) -> tuple[float, float, float, float]:
    """A box in the pixels of an ink map of ``region`` (as :func:`find_ink` returns them) → image pixels."""
    scale_x, scale_y = (region[2] - region[0]) / ink_shape[1], (region[3] - region[1]) / ink_shape[0]
    return (region[0] + box[0] * scale_x, region[1] + box[1] * scale_y,
            region[0] + box[2] * scale_x, region[1] + box[3] * scale_y)


@dataclass
class FoundInk:
    """The ink map of part of an image, and how it lies there."""

    ink: np.ndarray  # ink map (float H×W, ink high) of ``region``
    region: Box  # of the image (left, top, right, bottom), covered by the ink map
    turn: float = 0.0  # degrees the writing is turned counter-clockwise (the edges of a photographed sheet)

    def upright(self) -> np.ndarray:
        """The ink turned back so that the writing stands upright: a map of the ink's surroundings (the ink map
        itself when it is not turned)."""
        if not self.turn:
            return self.ink
        matrix, offset, shape = self._turning
        return np.clip(ndi.affine_transform(self.ink, matrix, offset, output_shape=shape, order=1), 0, 1)

    def from_upright(self, box: Box) -> Box:
        """A box in the upright map → the box around it in the ink map."""
        if not self.turn:
            return box
        matrix, offset, _ = self._turning
        left, top, right, bottom = box
        corners = np.array([[top, left], [top, right], [bottom, left], [bottom, right]], float) @ matrix.T + offset
        height, width = self.ink.shape
        return (max(0, math.floor(corners[:, 1].min())), max(0, math.floor(corners[:, 0].min())),
                min(width, math.ceil(corners[:, 1].max())), min(height, math.ceil(corners[:, 0].max())))

    @functools.cached_property
    def _turning(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """The affine map from upright (row, column) to ink-map (row, column) pixels, and the upright map's shape:
        the ink's box, turned about its centre (turning the whole map would cost more)."""
        left, top, right, bottom = ink_bounding_box(self.ink)
        height, width = bottom - top + 2, right - left + 2  # a pixel of paper around the ink
        cos, sin = math.cos(math.radians(self.turn)), math.sin(math.radians(self.turn))
        shape = (math.ceil(abs(cos) * height + abs(sin) * width), math.ceil(abs(sin) * height + abs(cos) * width))
        matrix = np.array([[cos, -sin], [sin, cos]])
        centre = np.array([(top + bottom - 1) / 2, (left + right - 1) / 2])
        offset = centre - matrix @ ((np.array(shape) - 1) / 2)
        return matrix, offset, shape


def find_ink(image: Image.Image, single_digit: bool = True) -> FoundInk:
    """The ink map of a digit (or with ``single_digit=False``, of a number), and the region of ``image`` it
    covers.

    On a photo of a sheet of paper lying on a darker desk, the ink is looked for on the sheet alone
    (:func:`hdr.sheet.find_sheet`), unless none is found there, and the writing is taken to be as turned as the
    sheet (by less than 45°: a note is written along its edges). A page partly in a sharp shadow is read whole, the
    shadow evened out.
    """
    working = working_copy(image)
    sheet = find_sheet(image, reduced=working)
    if isinstance(sheet, ShadowedPage):  # read as a whole page, its shadow evened out
        image = sheet.evened(image)
        return FoundInk(*_find_ink_in(image, working_copy(image), single_digit))
    if sheet is not None:
        ink, region = _find_ink_in(sheet.image, working_copy(sheet.image), single_digit)
        if ink_bounding_box(ink) is not None:
            left, top, _, _ = sheet.box
            return FoundInk(ink, (region[0] + left, region[1] + top, region[2] + left, region[3] + top), sheet.turn)
    return FoundInk(*_find_ink_in(image, working, single_digit))


def _find_ink_in(image: Image.Image, working: Image.Image, single_digit: bool) -> tuple[np.ndarray, Box]:
    """:func:`find_ink` on the whole of ``image``, whose :func:`working_copy` is ``working``.

    Ink is looked for on the working copy. When that copy is a reduction and the writing in it is small (a
    thin pen digit in a corner of a scanned page, a short number on a form) or not found at all, the image is
    looked at again at a higher resolution: the neighbourhood of the small writing at the image's own
    resolution (within a working copy's pixels; :func:`_closer_side`), or the whole image at twice the working
    size. Closed loops and faint thin strokes survive that, where the reduction merges or loses them.
    """
    ink = ink_map(working, single_digit=single_digit)
    whole = (0, 0, image.width, image.height)
    if max(image.size) <= max(working.size):
        return ink, whole
    box = ink_bounding_box(ink)
    if box is None:
        region, closer_image = whole, working_copy(image, 2 * WORKING_MAX_SIDE)
    else:
        # A digit's size is its longer side; a number's is its height.
        size = max(box[2] - box[0], box[3] - box[1]) if single_digit else box[3] - box[1]
        if size >= SMALL_DIGIT:
            return ink, whole
        scale = image.width / working.width
        left, top, right, bottom = (round(value * scale) for value in box)
        margin = round(size * scale)  # room for strokes too faint to be found in the reduction
        region = (max(0, left - margin), max(0, top - margin),
                  min(image.width, right + margin), min(image.height, bottom + margin))
        closer_image = working_copy(image.crop(region), _closer_side(region, size * scale))
    zoom = (closer_image.width / (region[2] - region[0])) / (working.width / image.width)
    closer = ink_map(closer_image, single_digit=single_digit, zoom=zoom)
    if ink_bounding_box(closer) is None:
        return ink, whole
    return closer, region
