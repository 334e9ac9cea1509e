"""Ruled lines (lined or squared paper, margins) removed from an ink mask, strokes crossing them kept.

:func:`remove_ruled_lines` finds level lines as bands of rows (columns) inked across most of the picture, and lines
turned by up to ``LINE_MAX_TILT`` degrees (paper photographed askew) along their own slopes; a line is removed where
it runs well past the writing, and a band that may be one of the writing's own strokes is left.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

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


def remove_ruled_lines(mask: np.ndarray, smooth: np.ndarray, level: float, zoom: float) -> np.ndarray:
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
