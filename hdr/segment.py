"""Segmentation of a line of handwritten digits (an ink map) into digit candidates and separators.

Connected components of the ink are sorted into digit material, separators (``.`` ``,`` ``-``),
underlines and specks; pieces of one broken digit (components stacked over each other) are merged.
Each run of digit ink (a *unit*, possibly several touching digits) gets candidate cuts: minimum-ink
vertical seams (seam carving). The pieces between any two cuts are the candidates the classifier
scores; :mod:`hdr.reader` picks the best sequence of pieces per unit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hdr.preprocess import stroke_width

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)

INK_THRESHOLD = 0.2  # ink-map value above which a pixel counts as ink
RULED_LINE_SPAN = 0.6  # a thin row band inked over this fraction of the image width is a ruled line
SPECK_AREA = 0.004  # components smaller than this × line height² are noise
MERGE_OVERLAP = 0.5  # stacked components overlapping by this fraction of the narrower one's width are one digit
SMALL = 0.45  # components lower than this × line height are separators or noise, not digits
ATTACHED = 0.05  # small components closer than this × line height to a digit belong to it
CUT_SPACING = 0.15  # minimum distance between candidate cuts, × line height
MIN_PIECE_WIDTH = 0.12  # candidate cuts keep at least this × line height from a unit's edges
MAX_PIECE_WIDTH = 1.6  # widest piece tried as one digit, × line height
SEAM_DRIFT_COST = 0.1  # cost of a diagonal step of a seam (keeps seams near-vertical)


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
class Piece:
    """A candidate digit: the ink of a unit between two of its cuts."""

    ink: np.ndarray
    box: Box
    start: int  # index of the left cut in the unit (0 = the unit's left edge)
    end: int  # index of the right cut (the unit's last index = its right edge)


@dataclass
class Unit:
    """A run of digit ink holding one or more digits, with candidate pieces between its cuts."""

    box: Box
    strokes_crossed: list[float]  # per cut, edges included (0): how many strokes the cut goes through
    pieces: list[Piece]

    @property
    def cuts(self) -> int:
        return len(self.strokes_crossed)


@dataclass
class Mark:
    """A separator between digits."""

    char: str
    box: Box


@dataclass
class Layout:
    """What segmentation found in one ink map, left to right."""

    units: list[Unit]
    marks: list[Mark]
    line_height: float
    shape: tuple[int, int]  # of the ink map


def segment(ink: np.ndarray) -> Layout:
    """Split an ink map (float H×W, ink high) into digit units with candidate pieces, and separators."""
    components = connected_components(remove_ruled_lines(ink))
    line_height = typical_height(components)
    components = [c for c in components if (c.ink > INK_THRESHOLD).sum() >= SPECK_AREA * line_height**2]
    components = [c for c in components if not is_underline(c, line_height)]
    groups = merge_stacked(components)
    digits = [g for g in groups if g.height >= SMALL * line_height]
    marks = []
    for small in (g for g in groups if g.height < SMALL * line_height):
        touching = [i for i, d in enumerate(digits) if horizontal_gap(small, d) <= ATTACHED * line_height]
        if touching:  # a fragment hugging a digit (a broken stroke) is part of it, not a separator
            digits[touching[0]] = union(digits[touching[0]], small)
        elif (mark := separator(small, digits, line_height)) is not None:
            marks.append(mark)
    units = [cut_candidates(g, line_height) for g in sorted(digits, key=lambda g: g.box[0])]
    return Layout(units, sorted(marks, key=lambda m: m.box[0]), line_height, ink.shape)


def remove_ruled_lines(ink: np.ndarray) -> np.ndarray:
    """Erase thin horizontal lines running across most of the image (ruled paper), except where strokes cross them."""
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


def is_underline(component: Component, line_height: float) -> bool:
    """A long flat stroke: wider than 1.5 digit heights and at most a third of a digit high."""
    return component.width > 1.5 * line_height and component.height < min(component.width / 5, line_height / 3)


def merge_stacked(components: list[Component]) -> list[Component]:
    """Merge components that overlap horizontally (a broken stroke, a 5's detached top bar)."""
    groups = sorted(components, key=lambda c: c.box[0])
    merged = True
    while merged:
        merged = False
        for i, first in enumerate(groups):
            for j in range(i + 1, len(groups)):
                second = groups[j]
                overlap = min(first.box[2], second.box[2]) - max(first.box[0], second.box[0])
                if overlap >= MERGE_OVERLAP * min(first.width, second.width):
                    groups[i] = union(first, second)
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return groups


def horizontal_gap(first: Component, second: Component) -> int:
    """Columns between two components (negative when they overlap horizontally)."""
    return max(first.box[0], second.box[0]) - min(first.box[2], second.box[2])


def union(first: Component, second: Component) -> Component:
    """One component holding the ink of both."""
    box = (min(first.box[0], second.box[0]), min(first.box[1], second.box[1]),
           max(first.box[2], second.box[2]), max(first.box[3], second.box[3]))
    ink = np.zeros((box[3] - box[1], box[2] - box[0]), np.float32)
    for part in (first, second):
        region = ink[part.box[1] - box[1] : part.box[3] - box[1], part.box[0] - box[0] : part.box[2] - box[0]]
        np.maximum(region, part.ink, out=region)
    return Component(ink, box)


def separator(component: Component, digits: list[Component], line_height: float) -> Mark | None:
    """``.``, ``,`` or ``-`` judged by shape and position against the neighbouring digits; ``None`` for noise."""
    if not digits:
        return None
    centre_x = (component.box[0] + component.box[2]) / 2
    centres = [(d.box[0] + d.box[2]) / 2 for d in sorted(digits, key=lambda d: d.box[0])]
    ordered = sorted(digits, key=lambda d: d.box[0])
    if not centres[0] < centre_x < centres[-1]:
        return None  # separators sit between digits
    top = np.interp(centre_x, centres, [d.box[1] for d in ordered])
    bottom = np.interp(centre_x, centres, [d.box[3] for d in ordered])
    height = bottom - top
    centre_y = (component.box[1] + component.box[3]) / 2
    if component.width >= 1.5 * component.height and component.width >= 0.2 * line_height \
            and top + 0.25 * height < centre_y < bottom - 0.15 * height:
        return Mark("-", component.box)
    if component.width < 0.4 * line_height and component.box[1] > top + 0.55 * height:
        below = component.box[3] - bottom
        comma = below > 0.1 * line_height or component.height > 1.6 * component.width
        return Mark("," if comma else ".", component.box)
    return None


def cut_candidates(component: Component, line_height: float) -> Unit:
    """Candidate cuts of a unit (minimum-ink seams) and every piece between two cuts narrow enough to be a digit."""
    found = seams_through(component.ink, line_height)
    seams = [np.full(component.height, -1)] + [seam for seam, _ in found] + [np.full(component.height, component.width - 1)]
    stroke = max(stroke_width(component.ink > INK_THRESHOLD), 1.0)
    strokes_crossed = [0.0] + [cost / stroke for _, cost in found] + [0.0]
    columns = np.arange(component.width)
    pieces = []
    for start in range(len(seams) - 1):
        for end in range(start + 1, len(seams)):
            whole = (start, end) == (0, len(seams) - 1)
            if seams[end].min() - seams[start].max() > 2 * MAX_PIECE_WIDTH * line_height and not whole:
                continue  # far too wide to be one digit
            inside = (columns > seams[start][:, None]) & (columns <= seams[end][:, None])
            ink = np.where(inside, component.ink, 0)
            rows, cols = np.nonzero(ink > INK_THRESHOLD)
            if len(cols) == 0:
                continue
            if cols.max() - cols.min() + 1 > MAX_PIECE_WIDTH * line_height and not whole:
                continue
            left, top = component.box[0], component.box[1]
            box = (left + cols.min(), top + rows.min(), left + cols.max() + 1, top + rows.max() + 1)
            crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            pieces.append(Piece(crop, box, start, end))
    return Unit(component.box, strokes_crossed, pieces)


def seams_through(ink: np.ndarray, line_height: float) -> list[tuple[np.ndarray, float]]:
    """Top-to-bottom paths crossing little ink (one column per row) with the ink each crosses, left to right.

    Paths are found ending at every bottom column and (on the flipped image) at every top column;
    the cheapest ones at least ``CUT_SPACING`` line heights apart are kept.
    """
    height, width = ink.shape
    margin = max(1, int(MIN_PIECE_WIDTH * line_height))
    if width < 2 * margin + 1:
        return []
    candidates = [(seam, cost) for seam, cost in cheapest_seams(ink)] \
        + [(seam[::-1], cost) for seam, cost in cheapest_seams(ink[::-1])]
    chosen: list[tuple[np.ndarray, float]] = []
    for seam, cost in sorted(candidates, key=lambda candidate: candidate[1]):
        position = seam.mean()
        if margin <= position <= width - 1 - margin and \
                all(abs(position - other.mean()) >= CUT_SPACING * line_height for other, _ in chosen):
            chosen.append((seam, cost))
    return sorted(chosen, key=lambda candidate: candidate[0].mean())


def cheapest_seams(ink: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """For each bottom column that is a local minimum of cost, the cheapest top-to-bottom path ending there."""
    height, width = ink.shape
    total = ink[0].astype(np.float64)
    steps = np.zeros((height, width), np.int8)
    for row in range(1, height):
        left = np.concatenate(([np.inf], total[:-1])) + SEAM_DRIFT_COST
        right = np.concatenate((total[1:], [np.inf])) + SEAM_DRIFT_COST
        options = np.stack([left, total, right])
        steps[row] = options.argmin(0) - 1
        total = options.min(0) + ink[row]
    padded = np.concatenate(([np.inf], total, [np.inf]))
    ends = np.flatnonzero((total <= padded[:-2]) & (total <= padded[2:]))
    paths = np.empty((height, len(ends)), int)
    paths[-1] = ends
    for row in range(height - 1, 0, -1):
        paths[row - 1] = paths[row] + steps[row, paths[row]]
    costs = ink[np.arange(height)[:, None], paths].sum(0)
    return [(paths[:, i], float(costs[i])) for i in range(len(ends))]
