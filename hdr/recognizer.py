"""The Recognizer: any image of a handwritten digit in, a calibrated prediction out."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from hdr import reader
from hdr.hub import ModelSource, load_model
from hdr.line_model import LineNet
from hdr.model import DigitNet
from hdr.preprocess import Preprocessed, preprocess

# A wide piece of ink is several digits when the line reader reads at least two there with this confidence: touching
# digits are read surely, scribbles and letters mostly not (of the benchmark's 280 non-digit images, 54 were taken
# for several digits without this rule, 9 with it, their wide inks read in one batch).
SEVERAL_DIGITS_CONFIDENCE = 0.9


@dataclass
class Prediction:
    """One classified digit.

    ``digit`` is always the most likely digit; ``unsure`` is set when the calibrated confidence is
    below the model's ``min_confidence`` or the image looks too little like any digit (its evidence is below
    ``min_evidence``, the ink is far wider than a digit, or the line reader reads several digits in it, unsurely):
    it may not be a digit at all. It is also set with ``several_digits`` when the ink stands in separate pieces
    side by side, like a number, or is one wide piece in which the line reader surely reads several digits, like a
    number whose digits touch (read those with :meth:`Recognizer.read`).
    """

    digit: int
    confidence: float
    probabilities: list[float]
    unsure: bool
    model_input: np.ndarray
    several_digits: bool = False

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        """The ``k`` most likely digits with their probabilities, most likely first."""
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(int(digit), self.probabilities[digit]) for digit in order]

    def to_dict(self) -> dict:
        """JSON-safe summary (without the 28×28 input)."""
        return {
            "digit": self.digit,
            "confidence": round(self.confidence, 6),
            "probabilities": [round(p, 6) for p in self.probabilities],
            "unsure": self.unsure,
            "several_digits": self.several_digits,
        }


class Recognizer:
    """Reads handwritten digits with a :class:`DigitNet` and whole numbers with a :class:`LineNet`;
    see :meth:`from_pretrained`."""

    def __init__(self, model: DigitNet, source: ModelSource, line_reader: LineNet, line_reader_source: ModelSource):
        self.model = model.eval()
        self.source = source  # where the digit model came from
        self.line_reader = line_reader.eval()
        self.line_reader_source = line_reader_source  # where the line reader came from

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike | None = None, revision: str | None = None,
                        line_reader: str | os.PathLike | None = None,
                        line_reader_revision: str | None = None) -> Recognizer:
        """Load both models, each from ``None`` (the shipped one), a local folder, or a hub repo id at a revision.

        ``source`` / ``revision`` pick the digit model, ``line_reader`` / ``line_reader_revision`` the line reader
        that reads whole numbers. Hub pulls fall back to the cached copy or the shipped model when the hub is out
        (see :func:`hdr.hub.load_model`); :attr:`source` and :attr:`line_reader_source` say what was loaded.
        """
        model, model_source = load_model(source, revision)
        reader_net, reader_source = load_model(line_reader, line_reader_revision, model_class=LineNet)
        return cls(model, model_source, reader_net, reader_source)

    @torch.inference_mode()
    def classify(self, model_inputs: Sequence[np.ndarray]) -> list[Prediction]:
        """Classify preprocessed 28×28 inputs in one batched model call."""
        if len(model_inputs) == 0:
            return []
        batch = torch.from_numpy(np.stack(model_inputs).astype(np.float32)).unsqueeze(1)
        logits = self.model(batch).float()
        probabilities = self.model.calibrated_probabilities(logits)
        unsure = self.model.is_unsure(logits, probabilities).tolist()
        probabilities = probabilities.numpy()
        predictions = []
        for model_input, row, flagged in zip(model_inputs, probabilities, unsure):
            digit = int(row.argmax())
            predictions.append(Prediction(digit, float(row[digit]), row.astype(float).tolist(), flagged, model_input))
        return predictions

    def classify_prepared(self, prepared: Sequence[Preprocessed]) -> list[Prediction]:
        """Classify preprocessed images in one model call. Flagged unsure: what looks like several digits (ink in
        pieces side by side, or one wide piece in which the line reader surely reads several digits); a wide piece
        in which it reads several digits, but not surely (a scribble, a letter); and ink far wider than any digit
        (a dash, a line)."""
        predictions = self.classify([item.model_input for item in prepared])
        several = [item.several_digits for item in prepared]
        unclear = [item.too_wide for item in prepared]
        wide = [number for number, item in enumerate(prepared) if item.wide_ink is not None]
        read = reader.digit_confidences(self.line_reader, [prepared[n].wide_ink for n in wide])
        for number, confidences in zip(wide, read):
            several[number] = sum(c >= SEVERAL_DIGITS_CONFIDENCE for c in confidences) >= 2
            unclear[number] = unclear[number] or len(confidences) >= 2
        return [replace(prediction, unsure=True, several_digits=True) if is_several
                else replace(prediction, unsure=True) if is_unclear else prediction
                for prediction, is_several, is_unclear in zip(predictions, several, unclear)]

    def predict(self, image) -> Prediction:
        """Read one digit from a path, bytes, a PIL image or a uint8 array (H×W, H×W×3, H×W×4).

        Raises ``InvalidImageError`` for anything that is not a readable image and
        ``BlankImageError`` when the image holds no ink.
        """
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence) -> list[Prediction]:
        """Read one digit from each image; the model runs once for the whole batch."""
        return self.classify_prepared([preprocess(image) for image in images])

    def read(self, image) -> reader.Reading:
        """Read a whole number (digits, separators ``. , -``, spaces between groups) from one image."""
        return self.read_batch([image])[0]

    def read_batch(self, images: Sequence) -> list[reader.Reading]:
        """Read a number from each image; the lines of all images go through the line reader in one batch."""
        return reader.read_batch(self, images)

    def read_each(self, images: Sequence) -> list[reader.Reading | Exception]:
        """Like :meth:`read_batch`, but an image that cannot be read gets its exception in the list instead of
        failing the others: the batch is read together, and one by one only when one of them fails."""
        try:
            return list(self.read_batch(images))
        except Exception:
            return [self._read_or_error(image) for image in images]

    def _read_or_error(self, image) -> reader.Reading | Exception:
        try:
            return self.read(image)
        except Exception as error:
            return error
