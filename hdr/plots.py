"""Pictures for model cards and evaluations: confusion matrix and learning curves."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix  # noqa: E402


def confusion_matrix_figure(probabilities: torch.Tensor, labels: torch.Tensor, path: Path,
                            title: str = "MNIST test: true (rows) vs predicted (columns)") -> torch.Tensor:
    """Save the confusion-matrix picture; return the matrix."""
    metric = MulticlassConfusionMatrix(num_classes=10)
    metric.update(probabilities, labels)
    figure, axis = metric.plot(add_text=True, labels=list(range(10)))
    figure.set_size_inches(7, 7)
    axis.set_title(title)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return metric.compute()


def learning_curves_figure(metrics_csv: Path, path: Path) -> None:
    """Plot per-epoch training/validation loss and validation accuracy from a CSVLogger file."""
    epochs: dict[int, dict[str, float]] = {}
    with open(metrics_csv) as handle:
        for row in csv.DictReader(handle):
            values = epochs.setdefault(int(row["epoch"]), {})
            values.update({key: float(value) for key, value in row.items() if value and key not in ("epoch", "step")})
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for key, axis in (("train/loss", loss_axis), ("val/loss", loss_axis), ("train/acc", acc_axis), ("val/acc", acc_axis)):
        points = [(epoch, values[key]) for epoch, values in sorted(epochs.items()) if key in values]
        if points:
            axis.plot(*zip(*points), marker="o", label=key)
    loss_axis.set(xlabel="epoch", ylabel="loss", yscale="log", title="loss")
    acc_axis.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for axis in (loss_axis, acc_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
