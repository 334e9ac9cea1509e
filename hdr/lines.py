"""A line of handwritten digits, from an ink map to the strip the line reader expects.

Ruled lines are erased, and an ink map is split into lines of digits where empty rows part them
(:func:`find_lines`). In each, underlines and specks are removed (:func:`find_line`); the remaining ink is
straightened (baseline drift undone), scaled so that a digit is ``STRIP_DIGIT_HEIGHT`` (or any given number of)
pixels high and centred in a strip ``STRIP_HEIGHT`` pixels high, whose width is a multiple of the reader's frame
width (:func:`strip_of`, once per scale).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from hdr.line_model import FRAME_WIDTH, STRIP_HEIGHT
from hdr.preprocess import Box

STRIP_DIGIT_HEIGHT = 20  # a digit's height in the strip, as in MNIST's 20×20 box
INK_THRESHOLD = 0.2  # ink-map value above which a pixel counts as ink
RULED_LINE_SPAN = 0.85  # a thin row band inked over this fraction of the width is a ruled line; at 0.6,
# strokes joining the touching digits of a short number were erased too
SPECK_AREA = 0.004  # components smaller than this × line height² are noise
SMALL = 0.45  # components lower than this × line height are separators or noise, not digits
MARGIN = 0.3  # blank strip on each side, × line height
COLUMN_PERCENTILE = 80  # of the columns' ink heights, taken as a digit's height
MIN_HEIGHT_SHARE = 0.8  # ... but at least this × the typical component height (a lone slanted 1)
LINE_GAP = 0.2  # bands of inked rows this far apart (× the tallest band's height) are lines of their own...
MIN_LINE_SHARE = 0.6  # ... when both are at least this × as tall as the tallest (not an underline, a dash or a dot)


@dataclass
class Component:
    """Ink that belongs together: a label mask cut out of the ink map."""

    ink: np.ndarray  # float crop, only this component's ink
    box: Box

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass
class Line:
    """The kept ink of a line of digits (no ruled lines, underlines, specks) and its geometry, at any scale."""

    ink: np.ndarray  # a tight frame cut out of the ink map
    origin: tuple[int, int]  # ink-map column and row of that frame's top-left corner
    height: float  # of a digit, in ink-map pixels
    centres: list[tuple[float, float]]  # ink-map centres of its digit-sized components, left to right


@dataclass
class Strip:
    """A line ready for the reader, and how its columns map back to the ink map."""

    pixels: np.ndarray  # float32 STRIP_HEIGHT × W, W a multiple of FRAME_WIDTH
    ink: np.ndarray  # the line's kept ink with a margin, a frame cut out of the ink map
    origin: tuple[int, int]  # ink-map column and row of that frame's top-left corner
    line_height: float  # of a digit in the ink map, in pixels
    left: float  # ink-map column of the strip's left edge
    scale: float  # strip pixels per ink-map pixel

    def to_ink_column(self, strip_column: float) -> float:
        """The ink-map column under a strip column."""
        return self.left + strip_column / self.scale


def line_strip(ink: np.ndarray, digit_height: float = STRIP_DIGIT_HEIGHT) -> Strip | None:
    """The reader's strip of an ink map (float H×W, ink high), a digit ``digit_height`` pixels high in it;
    ``None`` when it holds no ink worth reading."""
    line = find_line(ink)
    return None if line is None else strip_of(line, digit_height)


def find_lines(ink: np.ndarray) -> list[Line]:
    """The lines of digits in an ink map, top to bottom (one for a number written on one line); none when it holds
    no ink worth reading. Lines are told apart by empty rows between bands of inked rows (ruled lines left out)."""
    clean = remove_lines_across(ink)
    rows = (clean > INK_THRESHOLD).any(axis=1)
    bands = [(band.start, band.stop) for (band,) in ndimage.find_objects(ndimage.label(rows)[0])]
    tallest = max((stop - start for start, stop in bands), default=0)
    tall = [(start, stop) for start, stop in bands if stop - start >= MIN_LINE_SHARE * tallest]
    cuts = [(upper_stop + lower_start) // 2 for (_, upper_stop), (lower_start, _) in zip(tall, tall[1:])
            if lower_start - upper_stop >= LINE_GAP * tallest]
    lines = []
    for top, bottom in zip([0] + cuts, cuts + [ink.shape[0]]):
        line = _line_in(clean[top:bottom])
        if line is not None:
            left, line_top = line.origin
            lines.append(replace(line, origin=(left, line_top + top), centres=[(x, y + top) for x, y in line.centres]))
    return lines


def find_line(ink: np.ndarray) -> Line | None:
    """The line of digits in an ink map; ``None`` when it holds no ink worth reading."""
    return _line_in(remove_lines_across(ink))


def _line_in(ink: np.ndarray) -> Line | None:
    """:func:`find_line` on an ink map whose ruled lines are already erased."""
    components = connected_components(ink)
    line_height = typical_height(components)
    components = [c for c in components if (c.ink > INK_THRESHOLD).sum() >= SPECK_AREA * line_height**2
                  and not is_underline(c, line_height)]
    if not components:
        return None
    top, left = min(c.box[1] for c in components), min(c.box[0] for c in components)
    bottom, right = max(c.box[3] for c in components), max(c.box[2] for c in components)
    clean = np.zeros((bottom - top, right - left), np.float32)  # the kept ink only, in a tight frame
    for c in components:
        region = clean[c.box[1] - top : c.box[3] - top, c.box[0] - left : c.box[2] - left]
        np.maximum(region, c.ink, out=region)
    line_height = max(column_height(clean > INK_THRESHOLD), MIN_HEIGHT_SHARE * line_height)
    digits = [c for c in components if c.height >= SMALL * line_height] or components
    centres = sorted(((c.box[0] + c.box[2]) / 2, (c.box[1] + c.box[3]) / 2) for c in digits)
    return Line(clean, (left, top), line_height, centres)


def strip_of(line: Line, digit_height: float = STRIP_DIGIT_HEIGHT) -> Strip:
    """The line straightened (its digits' centres on one row) and scaled so a digit is ``digit_height`` high."""
    left, top = line.origin
    scale = digit_height / line.height
    blur = 0.4 / scale if scale < 1 else 0.0  # against aliasing when shrinking
    pad = int(np.ceil(3 * blur)) + 2
    clean, origin = np.pad(line.ink, pad), (left - pad, top - pad)
    start = left - MARGIN * line.height
    width = FRAME_WIDTH * int(np.ceil((line.ink.shape[1] + 2 * MARGIN * line.height) * scale / FRAME_WIDTH))
    columns = start + (np.arange(width) + 0.5) / scale - 0.5
    middle = np.interp(columns, [x for x, _ in line.centres], [y for _, y in line.centres])
    rows = middle[None, :] + (np.arange(STRIP_HEIGHT)[:, None] + 0.5 - STRIP_HEIGHT / 2) / scale
    source = ndimage.gaussian_filter(clean, blur) if blur else clean
    coordinates = [rows - origin[1], np.broadcast_to(columns - origin[0], rows.shape)]
    pixels = ndimage.map_coordinates(source, coordinates, order=1, cval=0.0)
    return Strip(np.clip(pixels, 0, 1).astype(np.float32), clean, origin, line.height, start, scale)


def remove_lines_across(ink: np.ndarray) -> np.ndarray:
    """Erase thin horizontal lines running across most of the image (ruled paper), except where strokes cross them.

    A second pass over a number's ink map, after :func:`hdr.ruled_paper.remove_ruled_lines` cleaned the picture's: the
    ink map may still hold pieces of lines (without this pass, 97.5% of the 800 validation numbers' boxes lay on their
    digit instead of 99.0%, and 770 were read instead of 771)."""
    mask = ink > INK_THRESHOLD
    bands, _ = ndimage.label(mask.mean(axis=1) > RULED_LINE_SPAN)
    ink = ink.copy()
    for (rows,) in ndimage.find_objects(bands):
        if rows.stop - rows.start > max(4, 0.05 * ink.shape[0]):
            continue  # too thick for a line
        crossing = mask[max(rows.start - 2, 0) : rows.start].any(0) & mask[rows.stop : rows.stop + 2].any(0)
        ink[max(rows.start - 1, 0) : rows.stop + 1, ~crossing] = 0
    return ink


def connected_components(ink: np.ndarray) -> list[Component]:
    """8-connected components of the ink, each with its own ink only."""
    labels, _ = ndimage.label(ink > INK_THRESHOLD, structure=np.ones((3, 3)))
    components = []
    for label, slices in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = slices
        crop = np.where(labels[slices] == label, ink[slices], 0).astype(np.float32)
        components.append(Component(crop, (cols.start, rows.start, cols.stop, rows.stop)))
    return components


def typical_height(components: list[Component]) -> float:
    """Height of a digit on this line: median height of the components at least half as tall as the tallest."""
    if not components:
        return 1.0
    heights = np.array([c.height for c in components], dtype=float)
    return float(np.median(heights[heights >= heights.max() / 2]))


def column_height(mask: np.ndarray) -> float:
    """Height of a digit from the ink of each column (top to bottom), robust to touching digits and drift:
    most columns through a digit span nearly all of it."""
    inked = mask.any(0)
    tops = mask.argmax(0)
    bottoms = mask.shape[0] - mask[::-1].argmax(0)
    return max(float(np.percentile((bottoms - tops)[inked], COLUMN_PERCENTILE)), 2.0)


def is_underline(component: Component, line_height: float) -> bool:
    """A long flat stroke: wider than 1.5 digit heights and at most a third of a digit high."""
    return component.width > 1.5 * line_height and component.height < min(component.width / 5, line_height / 3)
