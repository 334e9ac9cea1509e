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


def epoch_means(metrics_csv: Path) -> dict[int, dict[str, float]]:
    """Per-epoch means of each logged metric of a CSVLogger file (step-wise values such as train/loss included)."""
    sums: dict[tuple[int, str], list[float]] = {}
    with open(metrics_csv) as handle:
        for row in csv.DictReader(handle):
            if not row["epoch"]:  # learning-rate rows carry no epoch
                continue
            for key, value in row.items():
                if value and key not in ("epoch", "step"):
                    sums.setdefault((int(row["epoch"]), key), []).append(float(value))
    epochs: dict[int, dict[str, float]] = {}
    for (epoch, key), values in sums.items():
        epochs.setdefault(epoch, {})[key] = sum(values) / len(values)
    return epochs


def learning_curves_figure(runs: dict[str, Path], path: Path) -> None:
    """Plot per-epoch training/validation loss and error rate from CSVLogger files, one per run, labelled by the
    keys of ``runs`` (an ensemble's members; a single run's label may be empty)."""
    figure, (loss_axis, error_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for run, metrics_csv in runs.items():
        epochs = sorted(epoch_means(metrics_csv).items())
        prefix = f"{run} " if run else ""
        for key in ("train/loss", "val/loss"):
            points = [(epoch, values[key]) for epoch, values in epochs if key in values]
            if points:
                loss_axis.plot(*zip(*points), marker="o", markersize=3, label=prefix + key)
        for key in ("train/acc", "val/acc"):
            points = [(epoch, 100 * (1 - values[key])) for epoch, values in epochs if key in values]
            if points:
                error_axis.plot(*zip(*points), marker="o", markersize=3, label=prefix + key.replace("acc", "error"))
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    error_axis.set(xlabel="epoch", ylabel="error rate (%)", yscale="log", title="error rate (1 − accuracy)")
    for axis in (loss_axis, error_axis):
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize="small" if len(runs) > 1 else None)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
