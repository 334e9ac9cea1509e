"""Accuracy reports: MNIST test (already 28×28) and folders of labelled real images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hdr import mnist
from hdr.plots import confusion_matrix_figure
from hdr.loading import InvalidImageError
from hdr.preprocess import preprocess
from hdr.recognizer import Recognizer

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
BATCH_SIZE = 256


def evaluate_mnist(recognizer: Recognizer, data_root: str, figure: Path) -> dict:
    """Classify the 10,000 MNIST test digits as they are (no preprocessing: they already are model inputs)."""
    images, labels = mnist.load(data_root, train=False)
    inputs = list(images.float().div(255).numpy())
    predictions = [p for start in range(0, len(inputs), BATCH_SIZE)
                   for p in recognizer.classify(inputs[start:start + BATCH_SIZE])]
    return report("MNIST test", predictions, labels.tolist(), unreadable=0, figure=figure)


def evaluate_folder(recognizer: Recognizer, folder: Path, figure: Path) -> dict:
    """Preprocess and classify every image under ``folder/<digit>/``; unreadable files count as wrong."""
    files = sorted(path for path in folder.glob("[0-9]/*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"no labelled images under {folder} (expected {folder}/<digit>/*.png)")
    predictions, labels, unreadable = [], [], 0
    for start in range(0, len(files), BATCH_SIZE):
        prepared, batch_labels = [], []
        for path in files[start:start + BATCH_SIZE]:
            try:
                prepared.append(preprocess(path))
                batch_labels.append(int(path.parent.name))
            except InvalidImageError:
                unreadable += 1
        predictions += recognizer.classify_prepared(prepared)
        labels += batch_labels
    return report(str(folder), predictions, labels, unreadable, figure)


def report(name: str, predictions: list, labels: list[int], unreadable: int, figure: Path) -> dict:
    """Accuracy (unreadable images count as errors), per-class accuracy, and the confusion-matrix picture."""
    probabilities = torch.tensor(np.array([p.probabilities for p in predictions]), dtype=torch.float32)
    targets = torch.tensor(labels)
    matrix = confusion_matrix_figure(probabilities, targets, figure, title=f"{name}: true (rows) vs predicted (columns)")
    correct = int(matrix.diag().sum())
    total = len(labels) + unreadable
    per_class = {str(d): round(float(matrix[d, d] / matrix[d].sum()), 5) if matrix[d].sum() else None for d in range(10)}
    return {
        "dataset": name,
        "images": total,
        "accuracy": round(correct / total, 5),
        "errors": total - correct,
        "unreadable": unreadable,
        "unsure": sum(p.unsure for p in predictions),
        "per_class_accuracy": per_class,
    }
