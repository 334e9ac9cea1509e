"""A sheet of paper photographed on a darker desk: found, cut out, and the desk around it painted paper-coloured.

A phone photo of a note lying on a table shows a bright, rectangular sheet inside a darker surround. When the
sheet covers little of the picture, the desk looks like the paper and the sheet like a huge stroke of light
ink; so :func:`hdr.preprocess.find_ink` looks for the ink on the sheet alone. A note lying turned on the desk has
its writing turned as much: the sheet's edges say by how much, and the ink is turned back before it is read.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

THUMB_SIDE = 96  # the sheet is looked for on a thumbnail this size, in pictures at least this size (a smaller one
# is a digit cropped or drawn small, not a photo of a sheet with a digit on it)
RAISED_LEVELS = 4  # the sheet is looked for above Otsu's level and, while the bright region there is not convex,
# above this many higher levels
MIN_CONTRAST = 0.15  # the sheet is this much brighter than the desk on average (luminance in [0, 1])
MIN_EDGE_STEP = 0.185  # right across its edge, the sheet is this much brighter than the desk: 0.199 and up in 1,200
# dev drawings of notes on desks, while the better lit part of a page under vignetting, bounded by a ruled or margin
# line, is 0.155-0.174 brighter than the rest (it passed for a sheet, and the digit across its edge was lost)
MIN_AREA, MAX_AREA = 0.08, 0.85  # share of the picture the sheet covers (above MAX_AREA the paper fills it anyway)
MIN_SOLIDITY = 0.6  # the sheet is mostly paper: the ink on it (holes in the bright region) is less
MIN_FOUR_CORNERED = 0.85  # share of it the largest four-cornered shape inside covers: a sheet (even in perspective
# or with a corner lost in shadow or cut by the picture's edge), not a disc (0.64) or a hexagon (0.67)
MIN_CONVEX = 0.9  # share of its convex hull it fills: one whole sheet, not one joined to a bright part of the desk,
# cut in two by a bold stroke, or the strokes of chalk on a board
MAX_MOUTH = 10  # thumbnail pixels: a bold stroke running off the sheet's edge leaves a bay with a mouth this wide at most
MAX_MOUTH_SHARE = 0.1  # and its mouth is at most this share of its edge (a dark part of the desk between a sheet and
# a lit part of the desk opens wider)
MIN_SHARPNESS = 0.65  # the steepest 8 px of the step across its edge make this share of the step across 40 px: a
# sheet's edge is sharp (0.74 and up in 839 dev drawings), the edge of a soft shadow or of the lit part of a page is
# not (0.24–0.62 in most checked)
MAX_SHARPNESS = 1.25  # ... and a sheet's not much more than the whole step: where the brightness dips at the edge, the
# region is bounded by a dark line (a ruled line beside a better lit part of a page), not by a darker desk (sheets: 1.01
# at most in 299 dev drawings; the edge of a sharp shadow, with the writing across it, may overshoot: up to 2.6)
EDGE_SIDE = 640  # px: the edge's sharpness is measured on a copy this size at most (the working copy's)
CROSSING = 12  # px of that copy: a stroke reaching this far on both sides of the edge crosses it (a shadow's edge)
INK_SHARE = 0.6  # a stroke is darker than this share of the median brightness on its side of the edge
SHADOW_CLOSING = 0.05  # × that copy's side: wider than a stroke (a shadowed page's paper is found by a closing)
MIN_TURN = 1.0  # degrees: a sheet turned less than this (about what a 96-px thumbnail can tell) counts as upright
EDGE = 1  # thumbnail pixels along the sheet's blurred edge painted over too


@dataclass
class Sheet:
    """A sheet of paper found in a photo."""

    image: Image.Image  # grayscale, cut out of the photo along ``box``, the desk left in the box painted like the paper
    box: tuple[int, int, int, int]  # left, top, right, bottom in the photo
    turn: float  # degrees its edges are turned from the photo's axes (counter-clockwise), in [-45, 45); 0 under MIN_TURN


@dataclass
class ShadowedPage:
    """A page filling the photo, partly in a sharp-edged shadow (its lit part looked like a sheet on a desk)."""

    paper: np.ndarray  # the paper's brightness in [0, 1] on a copy at most EDGE_SIDE px wide

    @classmethod
    def of(cls, luminance: np.ndarray) -> ShadowedPage:
        """The page whose ``luminance`` is that of :func:`fine_luminance`: its paper is a grey closing wider than a
        stroke, its lower side taken along the shadow's edge, so that no rim of the edge turns darker than the paper
        when the page is evened."""
        window = max(3, round(SHADOW_CLOSING * max(luminance.shape)))
        return cls(ndi.grey_erosion(ndi.grey_closing(luminance, size=window), size=3))

    def evened(self, image: Image.Image) -> Image.Image:
        """``image`` in grayscale with its shadow lit up: divided by its paper's brightness (upsampled) and brought
        to the lit paper's."""
        paper = np.asarray(Image.fromarray(self.paper).resize(image.size, Image.Resampling.BILINEAR))
        luminance = np.asarray(image.convert("L"), np.float32) / 255
        evened = luminance / np.maximum(paper, 0.02) * float(np.percentile(self.paper, 95))
        return Image.fromarray(np.round(np.clip(evened, 0, 1) * 255).astype(np.uint8))


def find_sheet(image: Image.Image, reduced: Image.Image | None = None) -> Sheet | ShadowedPage | None:
    """The sheet of paper in ``image``; ``None`` when there is no such sheet, it fills the picture, or the picture is
    too small to be a photo of one (under THUMB_SIDE px). A page partly in a sharp shadow looks like a sheet (its lit
    part) until the writing is seen to run across the shadow's edge: then its :class:`ShadowedPage`. ``reduced``, a
    smaller copy of ``image`` made anyway, is where the thumbnail is taken from (a pass over a large image saved)."""
    width, height = image.size
    if max(width, height) < THUMB_SIDE:
        return None
    scale = THUMB_SIDE / max(width, height)
    source = reduced if reduced is not None and reduced.width < width else image
    thumb = source.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX)
    if "A" in thumb.getbands() and np.asarray(thumb.getchannel("A")).min() < 250:
        return None  # a transparent canvas, not a photo
    luminance = np.asarray(thumb.convert("L"), np.float32) / 255
    for raised, level in enumerate(_levels(luminance)):
        found = _bright_region(luminance, level)
        if found is None:
            return None
        bright, sheet, filled, hull, convex = found
        if convex:
            break
    else:
        return None  # joined to the desk at every level
    if largest_quadrilateral_area(hull) < MIN_FOUR_CORNERED * filled.sum():
        return None
    if edge_step(luminance, filled) < MIN_EDGE_STEP:
        return None
    fine = fine_luminance(source)
    sharpness = edge_sharpness(fine, edge_depth(filled, fine.shape))
    if sharpness < MIN_SHARPNESS:
        return None
    if ink_crosses_edge(fine, edge_depth(convex_polygon_mask(hull, filled.shape), fine.shape)):
        if raised:
            return None  # above Otsu's level only a whole sheet is looked for, its writing on it
        # The region is the brighter part of a larger paper: of a page partly in shadow, if with the dimmer paper it
        # fills the picture (no sheet then, but a shadowed page), else of a sheet lit unevenly (the region holds most
        # of its writing).
        dimmer = largest_region(luminance > otsu_level(luminance[~bright]))
        if ndi.binary_fill_holes(dimmer).mean() > MAX_AREA:
            return ShadowedPage.of(fine)
    if sharpness > MAX_SHARPNESS:
        return None  # the region is bounded by a dark line, not by a darker desk
    rows, cols = np.nonzero(filled)
    box = (int(cols.min() / scale), int(rows.min() / scale),
           min(width, int(np.ceil((cols.max() + 1) / scale))), min(height, int(np.ceil((rows.max() + 1) / scale))))
    window = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    inside = ndi.binary_erosion(filled, iterations=EDGE)
    crop = image.crop(box).convert("L")
    # The desk is painted with the brightness of the nearest paper, so that the paint follows the sheet's lighting.
    _, (nearest_row, nearest_col) = ndi.distance_transform_edt(~(inside & sheet), return_indices=True)
    paper = Image.fromarray(255 * luminance[nearest_row, nearest_col][window])
    paper = paper.resize(crop.size, Image.Resampling.BILINEAR).convert("L")
    inside = Image.fromarray(inside[window]).resize(crop.size, Image.Resampling.NEAREST)
    turn = turn_of_smallest_rectangle(hull)
    return Sheet(Image.composite(crop, paper, inside), box, turn if abs(turn) >= MIN_TURN else 0.0)


def _levels(luminance: np.ndarray) -> Iterator[float]:
    """The brightness levels above which the sheet is looked for, in turn: Otsu's level, then RAISED_LEVELS higher
    ones evenly up to Otsu's level among the pixels above it (worked out only if asked for). At Otsu's level the
    sheet may be joined to bright parts of the desk (streaks of wood grain, a lit patch) into a region that is not
    convex; higher, they fall away."""
    level = otsu_level(luminance)
    yield level
    above = luminance[luminance > level]
    if above.size:
        yield from np.unique(np.linspace(level, max(level, otsu_level(above)), 1 + RAISED_LEVELS))[1:]


class BrightRegion(NamedTuple):
    """The largest region of a thumbnail brighter than some level, as a candidate sheet."""

    bright: np.ndarray  # the pixels brighter than the level
    sheet: np.ndarray  # the largest region of them
    filled: np.ndarray  # that region with its holes and ink bays filled
    hull: np.ndarray  # the corners of its convex hull
    convex: bool  # it fills its hull (else it is joined to something else bright)


def _bright_region(luminance: np.ndarray, level: float) -> BrightRegion | None:
    """The largest region brighter than ``level`` in a thumbnail's ``luminance``, if it could be a sheet (large, and
    solid: mostly paper); ``None`` where it could not."""
    bright = luminance > level
    if bright.all() or not bright.any() or luminance[bright].mean() - luminance[~bright].mean() < MIN_CONTRAST:
        return None
    sheet = largest_region(bright)
    filled = ndi.binary_fill_holes(sheet)
    if filled.mean() > MAX_AREA or sheet.sum() < MIN_SOLIDITY * filled.sum():
        return None  # paper filling the picture, or not mostly paper (the bays below only make it more so)
    hull, hull_area = convex_hull(filled)  # the bays lie inside it: it is the hull of the region with them too
    filled |= ink_bays(filled, hull)
    if not MIN_AREA <= filled.mean() <= MAX_AREA or sheet.sum() < MIN_SOLIDITY * filled.sum():
        return None
    return BrightRegion(bright, sheet, filled, hull, bool(filled.sum() >= MIN_CONVEX * hull_area))


def largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of ``mask`` (none where it has none)."""
    labels, _ = ndi.label(mask)
    return labels == 1 + np.argmax(np.bincount(labels.ravel(), minlength=2)[1:])


def ink_bays(region: np.ndarray, hull: np.ndarray) -> np.ndarray:
    """The bays in ``region``'s edge that open through a narrow mouth: where a bold stroke runs off the sheet's edge.

    A bay is a piece of the region's convex hull outside the region; its mouth, the part of it next to the hull's
    outside. A stroke's bay is long and narrow, and the sheet borders it all along but its mouth. ``hull``: the
    corners of the region's convex hull (:func:`convex_hull`)."""
    inside_hull = convex_polygon_mask(hull, region.shape)
    next_to_outside = ndi.binary_dilation(np.pad(~inside_hull, 1, constant_values=True))[1:-1, 1:-1]
    in_bays = inside_hull & ~region
    bays, count = ndi.label(in_bays)
    # per bay: its pixels next to the hull's outside, and its pixels on its border (bays never touch side by side)
    mouth = np.bincount(bays[in_bays & next_to_outside], minlength=count + 1)
    edge = np.bincount(bays[in_bays & ~ndi.binary_erosion(in_bays)], minlength=count + 1)
    narrow = (mouth <= MAX_MOUTH) & (mouth <= MAX_MOUTH_SHARE * edge)
    narrow[0] = False  # not a bay
    return narrow[bays]


def convex_polygon_mask(corners: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixels whose centres lie inside the convex polygon with these ``corners`` (x, y), in order."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    x, y = cols + 0.5, rows + 0.5
    left_of_all, right_of_all = np.ones(shape, bool), np.ones(shape, bool)
    for (x0, y0), (x1, y1) in zip(corners, np.roll(corners, -1, axis=0)):
        side = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        left_of_all &= side >= 0
        right_of_all &= side <= 0
    return left_of_all | right_of_all


def edge_step(luminance: np.ndarray, region: np.ndarray, width: int = 2) -> float:
    """How much brighter ``region`` is just inside its edge than just outside it: a sheet's edge is a sharp step,
    a lighting gradient has none."""
    inside = region & ~ndi.binary_erosion(region, iterations=width)
    outside = ndi.binary_dilation(region, iterations=width) & ~region
    return float(luminance[inside].mean() - luminance[outside].mean()) if outside.any() else 0.0


def fine_luminance(image: Image.Image) -> np.ndarray:
    """The luminance of ``image`` in [0, 1], on a copy at most EDGE_SIDE px wide: where a sheet's edge is looked at."""
    if max(image.size) > EDGE_SIDE:
        image = image.copy()
        image.thumbnail((EDGE_SIDE, EDGE_SIDE), Image.Resampling.BOX)
    return np.asarray(image.convert("L"), np.float32) / 255


def edge_depth(region: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """How far inside the edge of ``region`` (a thumbnail mask) each pixel of a picture of ``shape`` lies, in its
    pixels (outside: < 0): the thumbnail's distances, upsampled."""
    depth = np.where(region, ndi.distance_transform_edt(region) - 0.5, 0.5 - ndi.distance_transform_edt(~region))
    scale = shape[1] / region.shape[1]
    return scale * np.asarray(Image.fromarray(depth.astype(np.float32)).resize(shape[::-1], Image.Resampling.BILINEAR))


def edge_sharpness(luminance: np.ndarray, depth: np.ndarray) -> float:
    """How sharp the step across a region's edge is, from the ``luminance`` of :func:`fine_luminance` and the
    ``depth`` of :func:`edge_depth`: the steepest 8 px of the brightness profile across it, as a share of the step
    across 40 px."""
    # the median brightness at each 2 px of depth, from 20 px outside the edge to 20 px inside
    band = np.abs(depth) < 20
    bins, brightness = np.floor(depth[band] / 2).astype(int) + 10, luminance[band]
    profile = np.array([np.median(brightness[bins == b]) if np.any(bins == b) else np.nan for b in range(20)])
    measured = profile[~np.isnan(profile)]
    centres = np.arange(6, 14)  # the steepest 8 px within 8 px of the edge found on the thumbnail
    steps = profile[centres + 2] - profile[centres - 2]
    steps = steps[~np.isnan(steps)]
    if steps.size == 0 or measured[-1] <= measured[0]:
        return 0.0  # no step to measure: not the edge of a sheet
    return float(steps.max() / (measured[-1] - measured[0]))


def ink_crosses_edge(luminance: np.ndarray, depth: np.ndarray) -> bool:
    """Whether a dark stroke runs across a region's edge (``luminance`` and ``depth`` as for :func:`edge_sharpness`; the
    edge of its convex hull, which runs across the strokes that cut into it), from CROSSING px inside it to CROSSING px
    outside: the edge of a shadow across the writing, not of a sheet (its writing stays on it; a stroke running off its
    edge ends there). Dark: under INK_SHARE of the median brightness on its side of the edge."""
    inside, outside = (depth > 0) & (depth < 2 * CROSSING), (depth <= 0) & (depth > -2 * CROSSING)
    if not inside.any() or not outside.any():
        return False
    dark = inside & (luminance < INK_SHARE * np.median(luminance[inside]))
    dark |= outside & (luminance < INK_SHARE * np.median(luminance[outside]))
    frame = 2 * CROSSING  # not where the region meets the picture's edge
    dark[:frame], dark[-frame:], dark[:, :frame], dark[:, -frame:] = False, False, False, False
    strokes, _ = ndi.label(dark, structure=np.ones((3, 3), bool))
    return np.intersect1d(strokes[dark & (depth > CROSSING)], strokes[dark & (depth < -CROSSING)]).size > 0


def otsu_level(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1]: the level that best splits them into a dark and a bright class."""
    histogram, edges = np.histogram(values, bins=64, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(histogram)
    mass = np.cumsum(histogram * centres)
    dark, bright = weight[:-1], weight[-1] - weight[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = dark * bright * (mass[:-1] / dark - (mass[-1] - mass[:-1]) / bright) ** 2
    return float(edges[1 + int(np.nanargmax(between))]) if np.isfinite(between).any() else 0.5


def convex_hull(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The corners (x, y) of the convex hull of the mask's pixels (each pixel a unit square), in order, and its
    area."""
    rows, cols = np.nonzero(mask & ~ndi.binary_erosion(mask))  # its edge: the inner pixels are inside any hull of it
    corners = np.concatenate([np.stack([cols + dx, rows + dy], 1) for dx in (0, 1) for dy in (0, 1)]).astype(float)
    try:
        hull = ConvexHull(corners)
    except QhullError:  # all in a line
        return corners[[corners[:, 0].argmin(), corners[:, 0].argmax()]], 0.0
    return corners[hull.vertices], float(hull.volume)  # a 2-D hull's volume is its area


def largest_quadrilateral_area(hull: np.ndarray) -> float:
    """Area of the largest quadrilateral with its corners among the ``hull``'s: for each diagonal, the corners
    farthest from it on either side."""
    best = 0.0
    for start in hull:
        vectors = hull - start  # the diagonals from ``start``, and where every corner lies from it
        # cross[d, c]: twice the signed area of the triangle of diagonal d and corner c
        cross = vectors[:, None, 0] * vectors[None, :, 1] - vectors[:, None, 1] * vectors[None, :, 0]
        best = max(best, float((cross.max(axis=1) - cross.min(axis=1)).max()) / 2)
    return best


def turn_of_smallest_rectangle(hull: np.ndarray) -> float:
    """How far the sides of the smallest rectangle around the ``hull`` are turned from the axes, in degrees
    counter-clockwise, in [-45, 45) (rotating calipers: one of its sides lies along a side of the hull)."""
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.arctan2(edges[:, 1], edges[:, 0])  # image rows grow downwards: a clockwise angle
    best, best_angle = np.inf, 0.0
    for angle in angles:
        c, s = np.cos(angle), np.sin(angle)
        rotated = hull @ np.array([[c, -s], [s, c]])
        area = float(np.ptp(rotated[:, 0]) * np.ptp(rotated[:, 1]))
        if area < best:
            best, best_angle = area, angle
    return (-np.degrees(best_angle) + 45) % 90 - 45
