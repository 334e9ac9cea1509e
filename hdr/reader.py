"""Reading whole numbers: each line of ink (:mod:`hdr.lines`) read by the CTC line reader (:mod:`hdr.line_model`).

Lines of digits written one under another are read one by one, and the text holds one line per line. The reader
emits the digits and separators ``. , -`` in reading order. Each line is read at three scales and the readings are
combined: the sequence of digits and separators most of them agree on, each digit's
probabilities averaged (geometric mean) over the readings that agree. Each character's box is the ink
between the cuts separating it from its neighbours (through a gap, or midway where ink joins them). A digit
that stands free of its neighbours also goes through the single-digit classifier, and the two models'
probabilities are multiplied.
Spaces come from unusually wide gaps.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from hdr.line_model import FRAME_WIDTH, Character, LineNet, decode
from hdr.lines import INK_THRESHOLD, STRIP_DIGIT_HEIGHT, Line, Strip, find_lines, line_strip, strip_of
from hdr.loading import load_image
from hdr.preprocess import Box, BlankImageError, FoundInk, find_ink, to_image_box, to_model_input

if TYPE_CHECKING:
    from hdr.recognizer import Prediction, Recognizer

READING_SCALES = (1.0, 0.9, 1.1)  # digit heights in the strip, relative to the one the reader was trained on
SPACE_GAP = 0.9  # a gap wider than this × line height (and twice the usual gap) separates digit groups


@dataclass
class Mark:
    """A separator between digits."""

    char: str
    box: Box


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
    """A number read from an image: ``text`` holds digits and the separators ``. , -`` and spaces (and a newline between
    lines, where lines of digits are written one under another); ``digits`` in reading order."""

    text: str
    digits: list[LocatedDigit]
    separators: list[Mark]
    confidence: float  # product of the digit confidences
    unsure: bool  # some digit is below the model's confidence threshold

    def one_line(self) -> str:
        """The text on one line: lines of digits written one under another joined by " / "."""
        return self.text.replace("\n", " / ")

    def to_dict(self) -> dict:
        """JSON-safe form."""
        return {"text": self.text, "confidence": round(self.confidence, 6), "unsure": self.unsure,
                "digits": [digit.to_dict() for digit in self.digits],
                "separators": [{"char": mark.char, "box": list(mark.box)} for mark in self.separators]}


def read_batch(recognizer: Recognizer, images: Sequence) -> list[Reading]:
    """Read a number from each image (or one per line, where lines of digits are written one under another); the
    lines of all images go through the line reader in one batch, and the digits that stand free of their neighbours
    through the digit classifier in another.

    Raises ``InvalidImageError`` for unreadable input and ``BlankImageError`` when an image holds no digit.
    """
    if not images:
        return []
    found, lines_of_images = zip(*(ink_lines_of(load_image(image)) for image in images))
    if not all(lines_of_images):
        raise BlankImageError("No digits found in the image.")
    ink_lines = [line for lines in lines_of_images for line in lines]
    scaled = [[strip_of(line, STRIP_DIGIT_HEIGHT * scale) for scale in READING_SCALES] for line in ink_lines]
    decoded = read_strips(recognizer.line_reader, [strip.pixels for strips in scaled for strip in strips])
    count = len(READING_SCALES)
    combined = [combine_readings(decoded[first : first + count]) for first in range(0, len(decoded), count)]
    strips = [candidates[chosen] for candidates, (chosen, _) in zip(scaled, combined)]
    lines = [characters for _, characters in combined]
    offset = recognizer.line_reader.peak_offset
    placed = [place_characters(strip, characters, offset) for strip, characters in zip(strips, lines)]
    free = [(character, place) for characters, places in zip(lines, placed)
            for character, place in zip(characters, places) if character.char.isdigit() and place.free]
    opinions = recognizer.classify([to_model_input(place.ink) for _, place in free])
    second_opinions = {id(character): opinion for (character, _), opinion in zip(free, opinions)}
    read_lines = iter(zip(strips, lines, placed))
    return [compose(found_ink, [next(read_lines) for _ in image_lines], second_opinions,
                    recognizer.line_reader.min_confidence)
            for found_ink, image_lines in zip(found, lines_of_images)]


def ink_lines_of(image: Image.Image) -> tuple[FoundInk, list[Line]]:
    """The ink of a loaded image and its lines of digits (none where it holds no ink worth reading), as they are read.

    Raises ``BlankImageError`` when the image holds no ink at all."""
    # single_digit=False: keep decimal points and far-away 1s, which single-digit speck removal would drop.
    found = find_ink(image, single_digit=False)
    return found, find_lines(found.upright())


def digit_confidences(model: LineNet, inks: list[np.ndarray]) -> list[list[float]]:
    """The confidence of each digit the line reader reads in each ink map (none where it finds nothing worth
    reading)."""
    strips = [line_strip(ink) for ink in inks]
    readable = [strip.pixels for strip in strips if strip is not None]
    decoded = iter(read_strips(model, readable) if readable else [])
    return [[] if strip is None else [c.confidence for c in next(decoded) if c.char.isdigit()] for strip in strips]


@torch.inference_mode()
def read_strips(model: LineNet, strips: list[np.ndarray]) -> list[list[Character]]:
    """Decoded characters of each strip, all strips in one padded batch."""
    width = max(strip.shape[1] for strip in strips)
    batch = torch.stack([F.pad(torch.from_numpy(strip), (0, width - strip.shape[1])) for strip in strips])
    probabilities = model(batch.unsqueeze(1)).float().softmax(-1)
    return [decode(line[: strip.shape[1] // FRAME_WIDTH]) for line, strip in zip(probabilities, strips)]


def combine_readings(readings: list[list[Character]]) -> tuple[int, list[Character]]:
    """One reading from readings of the same line at several scales (the first at the trained scale).

    The layout (which characters are digits and which separators) is the one most readings share, or the
    first reading's when they all differ. Each digit's probabilities are the normalised geometric mean over
    the readings with that layout, its confidence their mean. Returns the index of the reading whose frame
    positions the result keeps (the first one with that layout) and the characters.
    """
    layouts = [tuple(c.char if not c.char.isdigit() else "digit" for c in reading) for reading in readings]
    layout, votes = Counter(layouts).most_common(1)[0]
    if votes == 1:
        layout = layouts[0]
    agreeing = [reading for reading, other in zip(readings, layouts) if other == layout]
    combined = []
    for position, reference in enumerate(agreeing[0]):
        characters = [reading[position] for reading in agreeing]
        confidence = float(np.mean([c.confidence for c in characters]))
        log_mean = np.mean([np.log(np.clip(c.digit_probabilities, 1e-9, 1)) for c in characters], axis=0)
        probabilities = np.exp(log_mean - log_mean.max())
        probabilities /= probabilities.sum()
        char = str(int(probabilities.argmax())) if reference.char.isdigit() else reference.char
        combined.append(Character(char, confidence, reference.peak_frame, probabilities))
    return layouts.index(layout), combined


def digit_probabilities(character: Character, classified: Prediction | None) -> np.ndarray:
    """The line reader's digit probabilities, times the digit classifier's where it saw the digit on its own."""
    if classified is None:
        return character.digit_probabilities
    joint = character.digit_probabilities * np.asarray(classified.probabilities)
    return joint / joint.sum() if joint.sum() > 0 else character.digit_probabilities


def compose(found: FoundInk, lines: list[tuple[Strip, list[Character], list[Place]]],
            second_opinions: dict[int, Prediction], min_confidence: float) -> Reading:
    """Turn the characters decoded on each line of ``found``'s upright ink map (with the line's strip and the
    characters' places) into a :class:`Reading` with boxes in source pixels; its text holds one line per line of
    digits."""
    digits, separators, texts = [], [], []
    for strip, characters, places in lines:
        line_digits, line_separators = [], []
        for character, place in zip(characters, places):
            box = source_box(found.from_upright(place.box), found.ink.shape, found.region)
            if not character.char.isdigit():
                line_separators.append(Mark(character.char, box))
                continue
            probabilities = digit_probabilities(character, second_opinions.get(id(character)))
            order = np.argsort(probabilities)[::-1]
            confidence = min(character.confidence, float(probabilities[order[0]]))
            alternatives = [(int(digit), float(probabilities[digit])) for digit in order[:3]]
            line_digits.append(LocatedDigit(box, int(order[0]), confidence, alternatives, confidence < min_confidence))
        if line_digits:
            line_height = strip.line_height * (found.region[3] - found.region[1]) / found.ink.shape[0]
            texts.append(number_text(line_digits, line_separators, line_height))
            digits += line_digits
            separators += line_separators
    if not digits:
        raise BlankImageError("No digits found in the image.")
    return Reading("\n".join(texts), digits, separators, float(np.prod([d.confidence for d in digits])),
                   any(d.unsure for d in digits))


@dataclass
class Place:
    """Where a decoded character is in the ink map, and whether it stands free of its neighbours."""

    box: Box
    ink: np.ndarray  # the ink between its edges
    free: bool  # no ink crosses either edge


def place_characters(strip: Strip, characters: list[Character], peak_offset: float = 0.0) -> list[Place]:
    """Each character's ink: what lies between the cuts separating it from its neighbours. Between the columns where
    the reader saw two neighbours (its peaks, moved back by ``peak_offset`` digit heights, see :class:`LineNet`, or
    the nearest inked columns), the cut runs through the middle of the empty columns; where ink joins them (touching
    or overlapping digits), no column says where one ends, and the cut runs midway between them."""
    frame_left, frame_top = strip.origin
    mask = strip.ink > INK_THRESHOLD
    column_ink = mask.sum(0)
    seen = [strip.to_ink_column((c.peak_frame + 0.5) * FRAME_WIDTH) - peak_offset * strip.line_height
            for c in characters]
    # Where a character was seen beyond its ink (the last digit of a line, a 1 beside its neighbour), it is at the
    # nearest inked column.
    inked = np.flatnonzero(column_ink) if column_ink.any() else np.arange(mask.shape[1])
    centres = [int(inked[np.abs(inked - (int(column) - frame_left)).argmin()]) for column in seen]
    edges, clean = [0], [True]
    for left, right in zip(centres, centres[1:]):
        empty = np.flatnonzero(column_ink[left : right + 1] == 0)
        edges.append(left + (int(empty[0]) + int(empty[-1]) + 1) // 2 if empty.size else (left + right + 1) // 2)
        clean.append(empty.size > 0)
    edges.append(mask.shape[1])
    clean.append(True)
    places = []
    for number, (first, last) in enumerate(zip(edges, edges[1:])):
        last = max(last, first + 1)
        ink = strip.ink[:, first:last]
        rows, cols = np.nonzero(ink > INK_THRESHOLD)
        if len(rows) == 0:
            box = (frame_left + first, frame_top, frame_left + last, frame_top + mask.shape[0])
        else:
            ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            box = (frame_left + first + int(cols.min()), frame_top + int(rows.min()),
                   frame_left + first + int(cols.max()) + 1, frame_top + int(rows.max()) + 1)
        places.append(Place(box, ink, clean[number] and clean[number + 1] and ink.sum() >= 1.0))
    return places


def source_box(box: Box, ink_shape: tuple[int, int], region: Box) -> Box:
    """A box in the pixels of the ink map of ``region`` → source-image pixels."""
    left, top, right, bottom = to_image_box(box, ink_shape, region)
    return int(left), int(top), math.ceil(right), math.ceil(bottom)


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
