"""Corrections from users, kept as a small image dataset for fine-tuning.

Layout of a feedback folder (ImageFolder style: one folder per correct digit)::

    feedback/
      3/20261121T170501Z_1a2b3c4d.png      the 28×28 model input, white ink on black (MNIST style)
      originals/20261121T170501Z_1a2b3c4d.png  the image the user gave, as received
      log.jsonl                            one JSON line per correction (prediction, correction, model)

:func:`load_feedback` reads the digit folders back as MNIST-like arrays.
"""
from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

DIGIT_FOLDERS = [str(digit) for digit in range(10)]


class FeedbackStore:
    """Appends corrected samples to a feedback folder (safe to share between threads)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def save(self, model_input: np.ndarray, correct_digit: int, prediction: dict,
             original: Image.Image | None = None, extra: dict | None = None) -> Path:
        """Store one correction; return the path of the saved 28×28 sample."""
        if correct_digit not in range(10):
            raise ValueError(f"the correct digit must be 0–9, not {correct_digit!r}")
        now = datetime.now(timezone.utc)
        name = f"{now:%Y%m%dT%H%M%S%fZ}_{uuid.uuid4().hex[:8]}.png"
        sample = self.folder / str(correct_digit) / name
        sample.parent.mkdir(parents=True, exist_ok=True)
        pixels = (np.clip(model_input, 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(sample)
        record = {
            "time": now.isoformat(),
            "sample": sample.relative_to(self.folder).as_posix(),
            "correct_digit": correct_digit,
            "predicted_digit": prediction.get("digit"),
            "prediction": prediction,
            **(extra or {}),
        }
        if original is not None:
            original_path = self.folder / "originals" / name
            original_path.parent.mkdir(parents=True, exist_ok=True)
            original.convert("RGBA" if "A" in original.getbands() else "RGB").save(original_path)
            record["original"] = original_path.relative_to(self.folder).as_posix()
        with self._lock, open(self.folder / "log.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        return sample


def load_feedback(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """All feedback samples as (N×28×28 uint8 images, N int64 labels); empty arrays if none."""
    images, labels = [], []
    for digit in DIGIT_FOLDERS:
        for path in sorted((Path(folder) / digit).glob("*.png")):
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("L").resize((28, 28))))
            labels.append(int(digit))
    if not images:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    return np.stack(images), np.array(labels, np.int64)
