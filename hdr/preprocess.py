"""Any real image of a handwritten digit → the 28×28 input the model expects (MNIST's own normalisation).

The pipeline, one function per step:

* :func:`load_image` — read a path, bytes, PIL image or numpy array; apply EXIF orientation;
  refuse empty, corrupt, non-image and oversized inputs with a clear :class:`InvalidImageError`.
* :func:`ink_map` — where the ink is (float H×W, ink 1, paper 0): ink from the alpha channel of
  transparent canvases; otherwise grayscale, uneven lighting removed by a robust polynomial fit of
  the paper, ink polarity decided (dark pen on paper or chalk on a board), noise-aware threshold,
  ruled lines and specks removed.
* :func:`find_ink` — the ink map of the image (a note photographed on a desk: of the sheet alone,
  :mod:`hdr.sheet`), looked at again more closely where the writing is small in a big image.
* :func:`to_model_input` — crop to the ink, normalise the stroke width, fit the longer side in
  20 px keeping the aspect ratio (anti-aliased) and centre the centre of mass in 28×28, as MNIST does.
* :func:`preprocess` — all of the above on a downscaled working copy (for speed), plus the ink box
  in source pixels and whether the ink stands in pieces side by side like a number (:func:`ink_columns`).
"""
from __future__ import annotations

import functools
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage as ndi

from hdr.sheet import ShadowedPage, find_sheet

MAX_PIXELS = 40_000_000  # larger images are refused (a 12 Mpx phone photo is fine)
MAX_FILE_BYTES = 64 * 1024 * 1024
ORIENTATION_TAG = 0x0112  # EXIF: how the camera was held
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
LINE_COVERAGE = 0.8  # a ruled line is inked along at least this fraction of the image
LINE_PAST_WRITING = 0.6  # where the writing spans at most this fraction of the image's width, a ruled line may be
LINE_THICKNESS = 0.4  # up to this fraction of the writing's height thick (else up to a few pixels)
LINE_MAX_SHARE = 0.1  # ... and never more than this fraction of the picture's height (a ruled line is a few per cent
# of its spacing thick, and a picture of lined paper shows about one spacing or more)
LINE_MAX_TILT = 12  # degrees: ruled lines turned by up to this much (paper photographed askew) are found too
LINE_SLOPES = np.tan(np.radians(np.arange(-LINE_MAX_TILT, LINE_MAX_TILT + 0.25, 0.5)))
LEAST_TURN = math.tan(math.radians(0.5))  # lines within this slope of level are left to the level-line step
LINE_END_TURN = math.tan(math.radians(1.5))  # the end of a further line may be turned this much more than those found
INK_OVER_LINE = 2.0  # ink this many times darker than a ruled line (its 75th percentile) is kept on it
TURNED_LINE_COVERAGE = 0.9  # a turned line is inked along this much of the picture (where it lies inside it)
WIDE_INK_ASPECT = 1.0  # one piece of ink this wide for its height may be touching digits; at 0.6, 159 of 160
# touching pairs were caught instead of 119 ("11", "14", "71" can be narrower), but the REST route served 17% fewer
# predictions per second (the line reader ran on 83% of its digits instead of 11%)
MAX_DIGIT_ASPECT = 3.0  # ink wider than this × its height is not one digit: none of MNIST's 70,000 is over 2.5×
SOLID_INK = 0.5  # ink counted when telling pieces apart (a faint ruled line left under a number would join them)
Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)
NO_INK = "No ink found: the image looks empty. Write or draw a digit with clear contrast."


class InvalidImageError(ValueError):
    """The input is not a usable image (not an image, empty, corrupt or too large); the message says why."""


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


# --------------------------------------------------------------------------------------------- loading


def load_image(source, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``source`` (path, bytes, PIL image, or uint8 array H×W / H×W×3 / H×W×4) as an upright image.

    The result is in mode ``L``, ``LA``, ``RGB`` or ``RGBA`` (alpha is kept: transparent canvases
    carry the ink there). Raises :class:`InvalidImageError` with a message meant for the user.
    """
    return _open(source, max_pixels)[0]


def _open(source, max_pixels: int = MAX_PIXELS, draft_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """:func:`load_image`, and the upright size of the source. With ``draft_side``, JPEG files and bytes are
    decoded at a reduced scale (longer side still at least ``draft_side``), which is several times faster."""
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _image_from_array(source)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        image = _open_bytes(bytes(source), "The data")
    elif isinstance(source, (str, Path)):
        image = _open_bytes(_read_file(Path(source)), f"The file {Path(source).name!r}")
    else:
        raise InvalidImageError(
            f"Cannot read an image from a {type(source).__name__}; give a file path, bytes, a PIL image or a numpy array."
        )
    _check_size(image.width, image.height, max_pixels)
    try:
        orientation = image.getexif().get(ORIENTATION_TAG, 1)
        size = image.size[::-1] if orientation in (5, 6, 7, 8) else image.size  # these turn the image by 90°
        if draft_side and isinstance(source, (bytes, bytearray, memoryview, str, Path)) and max(image.size) > 2 * draft_side:
            scale = draft_side / max(image.size)
            image.draft(image.mode, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        image.load()
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # animated GIF / multi-page TIFF: the first frame
        if orientation != 1:
            image = ImageOps.exif_transpose(image)
        return _normalise_mode(image), size
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise InvalidImageError(f"The image is corrupt or truncated and cannot be decoded ({error}).") from error


def _read_file(path: Path) -> bytes:
    if not path.is_file():
        raise InvalidImageError(f"No image file at {str(path)!r}.")
    size = path.stat().st_size
    if size == 0:
        raise InvalidImageError(f"The file {path.name!r} is empty (0 bytes), so it holds no image.")
    if size > MAX_FILE_BYTES:
        raise InvalidImageError(
            f"The file {path.name!r} is too large ({size / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB)."
        )
    return path.read_bytes()


def _open_bytes(data: bytes, what: str) -> Image.Image:
    if not data:
        raise InvalidImageError(f"{what} is empty (0 bytes), so it holds no image.")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImageError(f"{what} is too large ({len(data) / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB).")
    try:
        with warnings.catch_warnings():
            # PIL warns (and above twice its limit, raises) on decompression bombs; treat both as "too large".
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImageError(f"{what} is too large to be a photo or drawing of a digit ({error}).") from error
    except UnidentifiedImageError as error:
        raise InvalidImageError(f"{what} is not an image in a format we can read (PNG, JPEG, GIF, BMP, TIFF, WebP...).") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidImageError(f"{what} is corrupt or truncated and cannot be decoded ({error}).") from error


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise InvalidImageError(f"The image has no pixels ({width}×{height}).")
    if width * height > max_pixels:
        raise InvalidImageError(
            f"The image is too large ({width}×{height} = {width * height / 1e6:.0f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f} megapixels). Please send a smaller image."
        )


def _image_from_array(array: np.ndarray) -> Image.Image:
    if array.size == 0:
        raise InvalidImageError("The image array is empty.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    modes = {2: "L", 3: {2: "LA", 3: "RGB", 4: "RGBA"}}
    mode = modes.get(array.ndim)
    if isinstance(mode, dict):
        mode = mode.get(array.shape[2])
    if mode is None:
        raise InvalidImageError(f"An image array must be H×W, H×W×3 or H×W×4; got shape {array.shape}.")
    _check_size(array.shape[1], array.shape[0], MAX_PIXELS)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        if not np.isfinite(array).all():
            raise InvalidImageError("The image array contains NaN or infinite values.")
        if array.min() < 0 or array.max() > 255:
            raise InvalidImageError(f"Image array values must lie in 0..255 (or 0..1 for floats); got {array.min()}..{array.max()}.")
        scale = 255 if np.issubdtype(array.dtype, np.floating) and array.max() <= 1 else 1
        array = np.round(array * scale).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array), mode)


def _normalise_mode(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to L, LA, RGB or RGBA."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        highest = float(values.max())
        if mode == "F" and highest <= 1.5:
            top = 1.0  # float images are often 0..1 (a little over 1 where resampling overshot)
        else:  # the fewest bits that hold the values: 8-, 10-, 12- or 14-bit data is often stored in 16 bits
            top = next((2.0**bits - 1 for bits in (8, 10, 12, 14, 16) if highest <= 2**bits - 1), highest)
        return Image.fromarray(np.clip(values / top * 255, 0, 255).astype(np.uint8), "L")
    if mode in ("La",):
        return image.convert("LA")
    if mode in ("RGBa",):
        return image.convert("RGBA")
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


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
            inside = _remove_edge_regions(_remove_ruled_lines(rough, smooth, thresholds[0] / 2, zoom))
        if inside.any():  # the desk around a photographed sheet may be darker than the ink: measure the ink inside
            thresholds = _thresholds(smooth, noise, peak=float(smooth[inside].max()))
    if thresholds is None:
        return np.zeros(signal.shape, np.float32)
    faint, clear = thresholds
    mask = smooth > faint
    if not canvas:  # a transparent canvas holds strokes only: no paper, so no ruled lines
        mask = _remove_ruled_lines(mask, smooth, faint / 2, zoom)
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
    image = _normalise_mode(image)
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


def _remove_ruled_lines(mask: np.ndarray, smooth: np.ndarray, level: float, zoom: float) -> np.ndarray:
    """Remove long thin horizontal and vertical lines (ruled or squared paper, margins) from ``mask``.

    A line is a thin band of rows (columns) whose ink signal exceeds ``level`` along at least
    ``LINE_COVERAGE`` of the image: it crosses the image even where it is too faint to be in the mask
    everywhere, while a digit's stroke, even in a tightly cropped image, does not. Where the paper was photographed
    askew, the lines are turned by up to ``LINE_MAX_TILT`` degrees, each at its own slope in perspective: such lines
    are found along their slopes and removed where they run well past the writing (a close-up photo of lined paper);
    across the writing, a straight band may be one of its own strokes.
    """
    across = _lines_in(smooth[:, ::3] > level, step=3)
    down = _lines_in(smooth[::3].T > level, step=3)
    if any(abs(line.slope) >= LEAST_TURN for line in across + down):
        on_lines = _on_lines(across, mask.shape) | _on_lines(down, mask.shape[::-1]).T
        near_lines = _on_lines(_widened(across), mask.shape) | _on_lines(_widened(down), mask.shape[::-1]).T
        writing = _off_lines(mask, on_lines, near_lines)
        writing &= ~_line_ends(writing, across) & ~_line_ends(writing.T, down).T
        writing = _main_pieces(writing)
        mask = _remove_turned_lines(mask, smooth, writing, across, zoom, ruled_across=bool(down))
        mask = _remove_turned_lines(mask.T, smooth.T, writing.T, down, zoom, ruled_across=bool(across)).T
    mask = _remove_horizontal_lines(mask, smooth, level, zoom)
    return _remove_horizontal_lines(mask.T, smooth.T, level, zoom).T


class RuledLine(NamedTuple):
    """A straight line across an image: row = offset + slope × column; ``thickness`` in rows."""

    slope: float
    offset: float
    thickness: float


def _lines_in(signal: np.ndarray, step: int) -> list[RuledLine]:
    """The lines that cross ``signal`` (every ``step``-th column of an image) at a slope of up to ``LINE_MAX_TILT``
    degrees, inked along ``TURNED_LINE_COVERAGE`` of it (of the part of it they lie in)."""
    if signal.any(axis=0).mean() < LINE_COVERAGE:
        return []  # no line of any slope
    height, width = signal.shape
    rows, columns = np.nonzero(signal)
    reach, within = _line_extents(height, width, step)
    bins = within.shape[1]
    offsets = np.round(rows - LINE_SLOPES[:, None] * (columns * step)).astype(int) + reach
    offsets += bins * np.arange(len(LINE_SLOPES))[:, None]
    # columns inked on each (slope, offset) line, at most one each
    counts = np.bincount(offsets.ravel(), minlength=within.size).reshape(within.shape)
    groups, count = ndi.label((counts >= TURNED_LINE_COVERAGE * within) & (within >= width / 2))
    needed = LINE_COVERAGE * width
    lines = []
    for group in range(1, count + 1):
        in_group = np.where(groups == group, counts, 0)
        fitting = in_group >= 0.95 * in_group.max()  # a thick line, or a thin one turned a little, fits several slopes
        # of those, the slope along which the line is thinnest, and of these the one nearest level
        candidates = [_line_along(slope_index, in_group, counts, within, needed, reach)
                      for slope_index in np.flatnonzero(fitting.any(axis=1))]
        lines.append(min(candidates, key=lambda fitted: (fitted[1].thickness, abs(fitted[1].slope))))
    return _distinct_lines(lines, width * step)


def _line_along(slope_index: int, in_group: np.ndarray, counts: np.ndarray, within: np.ndarray, needed: float,
                reach: int) -> tuple[float, RuledLine]:
    """The line of a group of :func:`_lines_in` at one slope, and how well it fits: its offset where the group
    counts most inked columns (``in_group``), its thickness the offsets next to it inked along half of ``needed``."""
    peak = (slope_index, int(np.argmax(in_group[slope_index])))
    along = counts[slope_index] >= needed / 2
    first = last = peak[1]
    while first > 0 and along[first - 1]:
        first -= 1
    while last < len(along) - 1 and along[last + 1]:
        last += 1
    line = RuledLine(float(LINE_SLOPES[slope_index]), (first + last) / 2 - reach, last + 1.0 - first)
    return int(counts[peak]) / max(int(within[peak]), 1), line


def _distinct_lines(fitted: list[tuple[float, RuledLine]], width: int) -> list[RuledLine]:
    """The lines, each with how well it fits, without those lying on another (found again at a neighbouring
    slope): of each, the best fitting, or the one nearest level of those that fit as well (a thick line fits a few)."""
    kept: list[RuledLine] = []
    for _, line in sorted(fitted, key=lambda item: (-round(item[0], 2), abs(item[1].slope))):
        middle = line.offset + line.slope * width / 2
        if all(abs(middle - (other.offset + other.slope * width / 2)) > other.thickness / 2 for other in kept):
            kept.append(line)
    return kept


@functools.lru_cache(maxsize=16)
def _line_extents(height: int, width: int, step: int) -> tuple[int, np.ndarray]:
    """For the lines of each slope of ``LINE_SLOPES`` and offset (from -reach to height + reach) through a picture
    of ``height`` rows and ``width`` columns (every ``step``-th of one): reach, and how many of the columns hold each
    line inside the picture (a turned line may leave it through the top or bottom)."""
    reach = math.ceil(LINE_SLOPES.max() * width * step)
    offsets = np.arange(height + 2 * reach + 1) - reach
    within = np.stack([_columns_inside(offsets, slope, np.arange(width) * step, height) for slope in LINE_SLOPES])
    within.flags.writeable = False
    return reach, within


def _columns_inside(offsets: np.ndarray, slope: float, x: np.ndarray, height: int) -> np.ndarray:
    """For lines ``offset + slope * x`` (one per offset), how many of the sorted columns ``x`` hold them inside
    rows 0..height (rounded)."""
    if slope == 0:
        return np.where((offsets >= -0.5) & (offsets < height - 0.5), len(x), 0)
    first, last = (-0.5 - offsets) / slope, (height - 0.5 - offsets) / slope  # where the line enters and leaves
    if slope > 0:
        return np.searchsorted(x, last, "left") - np.searchsorted(x, first, "left")
    return np.searchsorted(x, first, "right") - np.searchsorted(x, last, "right")


def _line_band(line: RuledLine, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of the pixels of an image of ``shape`` that ``line`` covers, with one more row each side
    (its soft edge)."""
    columns = np.arange(shape[1])
    centre, half = line.offset + line.slope * columns, line.thickness / 2 + 1
    top, bottom = np.ceil(centre - half).astype(int), np.floor(centre + half).astype(int)
    rows = top + np.arange(int(np.max(bottom - top, initial=0)) + 1)[:, None]
    inside = (rows <= bottom) & (rows >= 0) & (rows < shape[0])
    return rows[inside], np.broadcast_to(columns, rows.shape)[inside]


def _on_lines(lines: list[RuledLine], shape: tuple[int, int]) -> np.ndarray:
    """The pixels of an image of ``shape`` that any of ``lines`` covers."""
    covered = np.zeros(shape, bool)
    for line in lines:
        covered[_line_band(line, shape)] = True
    return covered


def _remove_turned_lines(mask: np.ndarray, smooth: np.ndarray, writing: np.ndarray, lines: list[RuledLine],
                         zoom: float, ruled_across: bool) -> np.ndarray:
    """Remove ``lines`` from ``mask`` if they run well past the ``writing`` (the ink off every line found).
    Strokes crossing a line keep their pixels on it, and so does ink ``INK_OVER_LINE`` times darker than the line (a
    stroke running along it; ``smooth`` is the ink signal). ``ruled_across``: lines were found across these too (the
    paper is ruled both ways, so a single line among these is a margin, not a stroke)."""
    height, width = mask.shape
    if not _runs_past(writing):
        return mask
    written = np.flatnonzero(writing.any(axis=0))
    if len(lines) == 1 and not ruled_across and not 0.1 * width <= written[0] <= written[-1] < 0.9 * width:
        return mask  # one line, not running past the writing on both sides: maybe a straight stroke of a drawing
    max_thickness = _thickest_line(writing, zoom)
    cleaned = mask.copy()
    columns = np.arange(width)
    for line in lines:
        slope, offset, thickness = line
        centre = offset + slope * columns
        # a "line" along the picture's edge may be the desk beside the page, which the edge step removes whole
        along_edge = np.mean((centre - thickness / 2 < 1) | (centre + thickness / 2 > height - 2)) > 0.5
        if thickness + 2 > max_thickness or along_edge:
            continue
        top = np.floor(centre - thickness / 2 - 1).astype(int)
        bottom = np.ceil(centre + thickness / 2 + 1).astype(int)
        above = mask[np.clip(top - 1, 0, height - 1), columns] | mask[np.clip(top - 2, 0, height - 1), columns]
        below = mask[np.clip(bottom + 1, 0, height - 1), columns] | mask[np.clip(bottom + 2, 0, height - 1), columns]
        rows, band_columns = _line_band(line, mask.shape)
        kept = (above & below)[band_columns] | _darker_than_line(smooth[rows, band_columns])
        cleaned[rows[~kept], band_columns[~kept]] = False
    return cleaned


def _darker_than_line(signal: np.ndarray) -> np.ndarray:
    """Where the ink ``signal`` on a ruled line's band is ``INK_OVER_LINE`` times the line's own (its 75th percentile):
    a stroke running along the line."""
    return signal > INK_OVER_LINE * np.percentile(signal, 75)


def _runs_past(writing: np.ndarray) -> bool:
    """Whether lines across the picture run well past ``writing`` (the ink off them): it spans at most
    ``LINE_PAST_WRITING`` of the width."""
    columns = np.flatnonzero(writing.any(axis=0))
    return len(columns) > 0 and columns[-1] + 1 - columns[0] <= LINE_PAST_WRITING * writing.shape[1]


def _thin_line(height: int, zoom: float) -> int:
    """How many rows thick a ruled line may be beside any writing in a picture ``height`` rows high: a few pixels
    (``zoom`` times more in a close look at part of a page)."""
    return max(math.ceil(5 * zoom), math.ceil(0.02 * height))


def _thickest_line(writing: np.ndarray, zoom: float) -> int:
    """How many rows thick a ruled line beside ``writing`` (the ink off the lines) may be: a few pixels, or, where the
    lines run well past the writing, ``LINE_THICKNESS`` of its height (a close-up photo makes them thick in pixels,
    but they stay thin next to the writing; in a tightly cropped digit, a band is one of its own strokes), though
    never more than ``LINE_MAX_SHARE`` of the picture's height."""
    height = writing.shape[0]
    thickest = _thin_line(height, zoom)
    if _runs_past(writing):
        rows = np.flatnonzero(writing.any(axis=1))
        writing_height = rows[-1] + 1 - rows[0]
        thickest = max(thickest, min(math.ceil(LINE_THICKNESS * writing_height), math.floor(LINE_MAX_SHARE * height)))
    return thickest


def _widened(lines: list[RuledLine]) -> list[RuledLine]:
    """``lines`` three times as thick, and two rows more (where the slivers they leave along their edges lie)."""
    return [line._replace(thickness=3 * line.thickness + 2) for line in lines]


def _off_lines(mask: np.ndarray, on_lines: np.ndarray, near_lines: np.ndarray) -> np.ndarray:
    """The writing in ``mask`` apart from the ruled lines (``on_lines``): its pieces off them that reach beyond
    ``near_lines`` (a line a little thicker or more turned than found leaves slivers along its edges)."""
    labels, count = ndi.label(mask & ~on_lines, structure=np.ones((3, 3)))
    reaching = np.zeros(count + 1, bool)
    reaching[np.unique(labels[~near_lines])] = True
    reaching[0] = False
    return reaching[labels]


def _line_ends(pieces: np.ndarray, lines: list[RuledLine]) -> np.ndarray:
    """The pieces of ``pieces`` that are ends of more ruled lines beside ``lines`` (lines that cross only a corner of
    the picture are not found): each reaches the picture's edge, and is long and no thicker than ``lines`` along its
    own slope, which is that of ``lines`` or up to ``LINE_END_TURN`` steeper or flatter."""
    ends = np.zeros(pieces.shape, bool)
    if not lines:
        return ends
    slopes = [line.slope for line in lines]
    # in perspective, lines further out are turned further: an end may be turned a little more than any line found
    least, most = min(slopes) - LINE_END_TURN, max(slopes) + LINE_END_TURN
    thickest = max(line.thickness for line in lines) + 2
    labels, _ = ndi.label(pieces, structure=np.ones((3, 3)))
    height, width = pieces.shape
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        rows, columns = np.nonzero(labels[box] == index)
        rows, columns = rows + box[0].start, columns + box[1].start
        at_edge = rows.min() == 0 or columns.min() == 0 or rows.max() == height - 1 or columns.max() == width - 1
        if not at_edge or np.ptp(columns) < 3 * thickest:
            continue
        slope = float(np.clip(np.polyfit(columns, rows, 1)[0], least, most))  # the piece's own slope, if a line's
        if np.ptp(rows - slope * columns) <= thickest:
            ends[box] |= labels[box] == index
    return ends


def _main_pieces(mask: np.ndarray) -> np.ndarray:
    """The pieces of ``mask`` at least a quarter the size of its largest (not the slivers a line leaves at its ends,
    nor specks of paper texture: at a tenth, the specks of a grainy photo made the writing seem to span the picture)."""
    labels, count = ndi.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    return (areas >= 0.25 * areas.max())[labels]


def _remove_horizontal_lines(mask: np.ndarray, smooth: np.ndarray, level: float, zoom: float) -> np.ndarray:
    height, width = mask.shape
    line_rows = np.percentile(smooth[:, ::3], 100 * (1 - LINE_COVERAGE), axis=1) > level
    if not line_rows.any() or line_rows.all():
        return mask
    bands, count = ndi.label(ndi.binary_dilation(line_rows))  # one more row each side: the line's soft edge
    rows = [np.flatnonzero(bands == band) for band in range(1, count + 1)]
    max_thickness = _thin_line(height, zoom)
    if any(len(band) > max_thickness for band in rows):  # a thick line, if it runs well past the writing
        near_rows = np.zeros(height, bool)
        for band in rows:  # as _widened: three times as thick, and two rows more
            near_rows[max(band[0] - len(band) - 1, 0) : band[-1] + len(band) + 2] = True
        on_lines = np.broadcast_to((bands > 0)[:, None], mask.shape)
        writing = _off_lines(mask, on_lines, np.broadcast_to(near_rows[:, None], mask.shape))
        max_thickness = _thickest_line(writing, zoom)
    rows = [band for band in rows if len(band) <= max_thickness]
    if not rows:
        return mask
    others = mask.copy()
    for band in rows:
        others[band] = False
    labels, count = ndi.label(others, structure=np.ones((3, 3)))
    if count:
        largest = ndi.find_objects(labels)[int(np.bincount(labels.ravel())[1:].argmax())]
        if largest[1].stop - largest[1].start > 0.6 * width:
            return mask  # the "line" is as wide as the writing: a stroke of a tightly cropped digit
    cleaned = others
    for band in rows:
        above = mask[max(band[0] - 2, 0) : band[0]].any(axis=0)
        below = mask[band[-1] + 1 : band[-1] + 3].any(axis=0)
        # strokes crossing the line keep their pixels on it, and so do strokes running along it
        cleaned[band] = mask[band] & ((above & below) | _darker_than_line(smooth[band]))
    return cleaned


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
    """``source`` (anything :func:`load_image` takes) → the model input, the ink box in source pixels, and
    whether the ink looks like several digits side by side (or one wide piece, which may be touching digits)."""
    image, (source_width, source_height) = _open(source, draft_side=WORKING_MAX_SIDE)
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
