"""Reading whole numbers: segmentation (:mod:`hdr.segment`) plus the single-digit classifier.

Every candidate piece of every image goes through the classifier in one batch; per run of touching
ink, the sequence of pieces with the highest joint log-confidence wins (a Viterbi pass over the cuts).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hdr.preprocess import BlankImageError, ink_map, load_image, to_model_input, working_copy
from hdr.segment import Box, Layout, Mark, Piece, Unit, segment

if TYPE_CHECKING:
    from hdr.recognizer import Prediction, Recognizer

SPACE_GAP = 0.9  # a gap wider than this × line height (and twice the usual gap) separates digit groups
SPLIT_PENALTY = 1.0  # score cost of each digit (so two confident halves don't beat one confident whole)
CUT_PENALTY = 0.5  # score cost per stroke a cut goes through
WIDE, WIDE_PENALTY = 1.2, 5.0  # pieces wider than WIDE × line height lose WIDE_PENALTY per line height beyond


@dataclass
class LocatedDigit:
    """One digit of a number: where it is (source pixels), what it is, and how sure the model is."""

    box: Box
    digit: int
    confidence: float
    alternatives: list[tuple[int, float]]  # the three most likely digits with their probabilities
    unsure: bool

    def to_dict(self) -> dict:
        return {"box": list(self.box), "digit": self.digit, "confidence": round(self.confidence, 6),
                "alternatives": [[digit, round(p, 6)] for digit, p in self.alternatives], "unsure": self.unsure}


@dataclass
class Reading:
    """A number read from an image: ``text`` holds digits and the separators ``. , -`` and spaces."""

    text: str
    digits: list[LocatedDigit]
    separators: list[Mark]
    confidence: float  # product of the digit confidences
    unsure: bool  # some digit is below the model's confidence threshold

    def to_dict(self) -> dict:
        """JSON-safe form."""
        return {"text": self.text, "confidence": round(self.confidence, 6), "unsure": self.unsure,
                "digits": [digit.to_dict() for digit in self.digits],
                "separators": [{"char": mark.char, "box": list(mark.box)} for mark in self.separators]}


def read_batch(recognizer: Recognizer, images: Sequence) -> list[Reading]:
    """Read a number from each image, classifying the candidate pieces of all images in one batch.

    Raises ``InvalidImageError`` for unreadable input and ``BlankImageError`` when an image holds no digit.
    """
    loaded = [load_image(image) for image in images]
    # single_digit=False: keep decimal points and far-away 1s, which single-digit speck removal would drop.
    layouts = [segment(ink_map(working_copy(image), single_digit=False)) for image in loaded]
    candidates = [(piece, model_input) for layout in layouts for unit in layout.units for piece in unit.pieces
                  if (model_input := model_input_or_none(piece.ink)) is not None]
    predictions = recognizer.classify([model_input for _, model_input in candidates])
    scored = {id(piece): prediction for (piece, _), prediction in zip(candidates, predictions)}
    return [compose(image, layout, scored) for image, layout in zip(loaded, layouts)]


def model_input_or_none(ink: np.ndarray) -> np.ndarray | None:
    """The 28×28 classifier input of a piece of ink, or ``None`` when it holds too little ink."""
    try:
        return to_model_input(ink)
    except BlankImageError:
        return None


def best_pieces(unit: Unit, scored: dict[int, Prediction], line_height: float) -> list[tuple[Piece, Prediction]]:
    """The sequence of pieces from the unit's left edge to its right edge with the best total :func:`score`."""
    best: dict[int, tuple[float, list]] = {0: (0.0, [])}
    for end in range(1, unit.cuts):
        options = [(best[piece.start][0] + score(piece, scored[id(piece)], unit, line_height),
                    best[piece.start][1] + [(piece, scored[id(piece)])])
                   for piece in unit.pieces if piece.end == end and piece.start in best and id(piece) in scored]
        if options:
            best[end] = max(options, key=lambda option: option[0])
    return best.get(unit.cuts - 1, (0.0, []))[1]


def score(piece: Piece, prediction: Prediction, unit: Unit, line_height: float) -> float:
    """How good a piece is as one digit: log-confidence, minus penalties for each extra digit, for
    cutting through strokes and for being wider than a digit."""
    width = (piece.box[2] - piece.box[0]) / line_height
    return (math.log(max(prediction.confidence, 1e-9)) - SPLIT_PENALTY
            - CUT_PENALTY * unit.strokes_crossed[piece.end] - WIDE_PENALTY * max(0.0, width - WIDE))


def compose(image: Image.Image, layout: Layout, scored: dict[int, Prediction]) -> Reading:
    """Turn the chosen pieces and the separators into a :class:`Reading` with boxes in source pixels."""
    chosen = [choice for unit in layout.units for choice in best_pieces(unit, scored, layout.line_height)]
    if not chosen:
        raise BlankImageError("No digits found in the image.")
    ink_height, ink_width = layout.shape
    scale = (image.width / ink_width, image.height / ink_height)
    digits = [LocatedDigit(scale_box(piece.box, scale), prediction.digit, prediction.confidence,
                           prediction.top(3), prediction.unsure) for piece, prediction in chosen]
    separators = [Mark(mark.char, scale_box(mark.box, scale)) for mark in layout.marks]
    text = number_text(digits, separators, layout.line_height * scale[1])
    return Reading(text, digits, separators, float(np.prod([d.confidence for d in digits])),
                   any(d.unsure for d in digits))


def scale_box(box: Box, scale: tuple[float, float]) -> Box:
    """A box in ink-map pixels → source-image pixels."""
    sx, sy = scale
    return (int(box[0] * sx), int(box[1] * sy), math.ceil(box[2] * sx), math.ceil(box[3] * sy))


def number_text(digits: list[LocatedDigit], separators: list[Mark], line_height: float) -> str:
    """Digits and separators left to right; a space where a gap between digits is much wider than usual."""
    items = sorted([(d.box, str(d.digit)) for d in digits] + [(m.box, m.char) for m in separators],
                   key=lambda item: item[0][0] + item[0][2])
    boxes = [d.box for d in sorted(digits, key=lambda d: d.box[0] + d.box[2])]
    usual_gap = float(np.median([b[0] - a[2] for a, b in zip(boxes, boxes[1:])])) if len(boxes) > 1 else 0.0
    text = ""
    for (previous_box, previous), (box, char) in zip([(None, "")] + items, items):
        gap = box[0] - previous_box[2] if previous_box else 0
        if previous.isdigit() and char.isdigit() and gap > max(SPACE_GAP * line_height, 2 * usual_gap):
            text += " "
        text += char
    return text


def draw_reading(image, reading: Reading) -> Image.Image:
    """The image with a box and the read digit over each digit (orange when unsure) and separators in blue."""
    canvas = load_image(image).convert("RGBA")
    background = Image.new("RGBA", canvas.size, (255, 255, 255, 255))
    canvas = Image.alpha_composite(background, canvas).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    line = max(2, canvas.height // 150)
    for digit in reading.digits:
        colour = (230, 120, 0) if digit.unsure else (0, 160, 60)
        draw.rectangle(digit.box, outline=colour, width=line)
        size = max(12, (digit.box[3] - digit.box[1]) // 3)
        font = ImageFont.load_default(size=size)
        draw.text((digit.box[0], max(0, digit.box[1] - size - line)), str(digit.digit), fill=colour, font=font)
    for mark in reading.separators:
        draw.rectangle(mark.box, outline=(40, 90, 220), width=line)
    return canvas
