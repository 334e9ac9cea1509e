"""Any image source → an upright PIL image, or a clear refusal.

:func:`load_image` reads a path, bytes, a PIL image or a numpy array, applies the EXIF orientation and brings the
image to mode L, LA, RGB or RGBA. Empty, corrupt, non-image and oversized inputs raise :class:`InvalidImageError`
with a message meant for the user.
"""
from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # larger images are refused (a 12 Mpx phone photo is fine)
MAX_FILE_BYTES = 64 * 1024 * 1024
ORIENTATION_TAG = 0x0112  # EXIF: how the camera was held


class InvalidImageError(ValueError):
    """The input is not a usable image (not an image, empty, corrupt or too large); the message says why."""


def load_image(source, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``source`` (path, bytes, PIL image, or uint8 array H×W / H×W×3 / H×W×4) as an upright image.

    The result is in mode ``L``, ``LA``, ``RGB`` or ``RGBA`` (alpha is kept: transparent canvases
    carry the ink there). Raises :class:`InvalidImageError` with a message meant for the user.
    """
    return open_image(source, max_pixels)[0]


def open_image(source, max_pixels: int = MAX_PIXELS,
               draft_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
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
        return normalise_mode(image), size
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


def normalise_mode(image: Image.Image) -> Image.Image:
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
