"""Export the best checkpoint (digit classifier or line reader) as a Hugging Face model folder with a measured model card."""
from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from hdr.calibration import calibrated_probabilities, evidence, expected_calibration_error, fit_temperature
from hdr.line_data import LineDataset
from hdr.line_model import FRAME_WIDTH, LineNet, decode
from hdr.line_module import LineReader, texts_of
from hdr.lit_module import DigitClassifier
from hdr.model import DigitNet
from hdr.plots import confusion_matrix_figure, learning_curves_figure
from hdr.reader import read_strips

UNSURE_RATE_ON_VALIDATION = 0.005


@torch.no_grad()
def collect_logits(net: torch.nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of every batch of a loader of (uint8 images, labels)."""
    net.eval()
    logits, labels = [], []
    for images, batch_labels in loader:
        logits.append(net(images.unsqueeze(1).float() / 255).float())
        labels.append(batch_labels)
    return torch.cat(logits), torch.cat(labels)


def export_model(checkpoint: str, datamodule, output_dir: str, command: str, training_seconds: float,
                 log_dir: str) -> dict:
    """Calibrate, measure and save the best checkpoint to ``output_dir``; return the metrics."""
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    module = DigitClassifier.load_from_checkpoint(checkpoint, map_location="cpu")
    learning_curves_figure({"": Path(log_dir) / "metrics.csv"}, output / "learning_curves.png")
    init_from = module.hparams.get("init_from")
    return calibrate_and_save(module.net.float(), datamodule, output, command, training_seconds,
                              Path(log_dir) / "config.yaml", init_from, starting_members(init_from))


def starting_members(init_from: str | None) -> list[dict] | None:
    """The members' table of the ensemble a run started from (a local folder's ``metrics.json``), which the run's
    export keeps: the ensemble's seeds and runs stay on its card."""
    metrics_file = Path(init_from) / "metrics.json" if init_from else None
    if metrics_file is None or not metrics_file.is_file():
        return None
    return json.loads(metrics_file.read_text()).get("members")


def calibrate_and_save(trained: DigitNet, datamodule, output: Path, command: str, training_seconds: float,
                       config_file: Path, init_from: str | None, members: list[dict] | None = None) -> dict:
    """Fit the temperature and the unsure thresholds of a trained digit model on the validation split, measure it on
    the test split, and save it with its confusion matrix and model card to ``output``; return the metrics.
    ``members`` describes the runs an ensemble was built from (see :mod:`hdr.ensemble`), for the card and metrics."""
    trained.load_state_dict(trained.stored_state())  # measure the weights exactly as they are saved
    val_logits, val_labels = collect_logits(trained, datamodule.val_dataloader())
    temperature = fit_temperature(val_logits, val_labels)
    val_probabilities = calibrated_probabilities(val_logits, temperature)
    min_confidence = float(val_probabilities.max(-1).values.quantile(UNSURE_RATE_ON_VALIDATION))
    min_evidence = float(evidence(val_logits, temperature).quantile(UNSURE_RATE_ON_VALIDATION))

    net = DigitNet(widths=trained.widths, dropout=trained.dropout, members=len(trained.members),
                   escalate_below=trained.escalate_below, temperature=round(temperature, 4),
                   min_confidence=round(min_confidence, 4), min_evidence=round(min_evidence, 4))
    net.load_state_dict(trained.state_dict())
    net.eval()

    with batch_sizes_seen(net.members[-1]) as sizes:  # the last member sees the images an ensemble escalates
        test_logits, test_labels = collect_logits(net, datamodule.test_dataloader())
    test_probabilities = net.calibrated_probabilities(test_logits)
    predictions = test_probabilities.argmax(-1)
    matrix = confusion_matrix_figure(test_probabilities, test_labels, output / "confusion_matrix.png")
    per_class = (matrix.diag() / matrix.sum(1)).tolist()
    metrics = {
        "mnist_test_accuracy": round(float((predictions == test_labels).float().mean()), 5),
        "mnist_test_errors": int((predictions != test_labels).sum()),
        "mnist_test_ece_uncalibrated": round(expected_calibration_error(torch.softmax(test_logits, -1), test_labels), 5),
        "mnist_test_ece_calibrated": round(expected_calibration_error(test_probabilities, test_labels), 5),
        "mnist_val_accuracy": round(float((val_logits.argmax(-1) == val_labels).float().mean()), 5),
        "mnist_test_per_class_accuracy": {str(digit): round(value, 4) for digit, value in enumerate(per_class)},
        "temperature": round(temperature, 4),
        "min_confidence": round(min_confidence, 4),
        "min_evidence": round(min_evidence, 4),
        "mnist_val_flagged_unsure": round(float(net.is_unsure(val_logits, val_probabilities).float().mean()), 5),
        "training_seconds": round(training_seconds, 1),
    }
    if len(net.members) > 1:
        metrics["mnist_test_share_read_by_all_members"] = round(sum(sizes) / len(test_labels), 5)
    table = {key: value for key, value in metrics.items() if not isinstance(value, dict)}
    table["mnist_test_per_class_accuracy"] = ", ".join(
        f"{digit}: {value:.2%}" for digit, value in metrics["mnist_test_per_class_accuracy"].items())
    if members:
        metrics["members"] = members
    save_model_folder(net, output, metrics, config_file, command, init_from, card_values={
        "metrics": table, "val_size": datamodule.hparams.val_size,
        "temperature": metrics["temperature"], "min_confidence": metrics["min_confidence"],
        "min_evidence": metrics["min_evidence"], "unsure_rate": f"{UNSURE_RATE_ON_VALIDATION:.1%}",
        "ensemble_size": len(net.members), "escalate_below": net.escalate_below, "members": members})
    return metrics


@contextmanager
def batch_sizes_seen(module: torch.nn.Module) -> Iterator[list[int]]:
    """The sizes of the batches ``module`` is called with inside the ``with`` block."""
    sizes: list[int] = []
    hook = module.register_forward_hook(lambda _, inputs, output: sizes.append(len(output)))
    try:
        yield sizes
    finally:
        hook.remove()


def training_hardware() -> str:
    """The machine a run trained on, for its model card: the GPU if there is one, else the CPU and its threads."""
    if torch.cuda.is_available():
        return f"an {torch.cuda.get_device_name()} GPU"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads"


def save_model_folder(net: torch.nn.Module, output: Path, metrics: dict, config_file: Path, command: str,
                      init_from: str | None, card_values: dict | None = None) -> None:
    """Write ``train_config.yaml`` (a copy of ``config_file``, the run's config), ``metrics.json``, the weights and a
    model card filled with the parameter count, the metrics, the training time (of this run; ``init_from`` names the
    model it started from, if any), the hardware, the command and the config (plus ``card_values``, which override
    these)."""
    if config_file.exists():
        shutil.copy(config_file, output / "train_config.yaml")
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (output / "README.md").unlink(missing_ok=True)  # save_pretrained keeps an existing card
    minutes, seconds = divmod(int(metrics["training_seconds"]), 60)
    values = {
        "parameters": f"{sum(p.numel() for p in net.parameters()):,}",
        "metrics": metrics,
        "training_time": f"{minutes} min {seconds} s",
        "hardware": training_hardware(),
        "command": command,
        "config": config_file.read_text().strip() if config_file.exists() else "",
        "init_from": init_from,
    }
    net.save_pretrained(output, model_card_kwargs={**values, **(card_values or {})})


@torch.no_grad()
def read_validation_lines(net: LineNet, loader) -> tuple[list[str], list[str], list[float]]:
    """Decoded texts, true texts and the confidence of every decoded character, over a loader of lines."""
    net.eval()
    predicted, truth, confidences = [], [], []
    for batch in loader:
        probabilities = net(batch["strips"]).softmax(-1)
        for line, width in zip(probabilities, batch["widths"].tolist()):
            characters = decode(line[: width // FRAME_WIDTH])
            predicted.append("".join(c.char for c in characters))
            confidences += [c.confidence for c in characters]
        truth += texts_of(batch["labels"], batch["label_lengths"])
    return predicted, truth, confidences


def fit_peak_offset(net: LineNet, numbers: LineDataset, count: int = 500) -> float:
    """Where the reader's peak for a digit falls, from the digit's centre, in digit heights: the median over the
    digits of the first ``count`` validation numbers drawn as ink (not read back from an image, whose digits' places
    are not known) that it reads right (0 when it reads none right)."""
    net.eval()
    drawn = [number for index in range(min(count, len(numbers)))
             if (number := numbers.number(index)).digit_columns is not None]
    read = [characters for first in range(0, len(drawn), 64)  # in batches of 64 strips
            for characters in read_strips(net, [number.strip.pixels for number in drawn[first : first + 64]])]
    offsets = []
    for number, characters in zip(drawn, read):
        if "".join(c.char for c in characters) != number.text.replace(" ", ""):
            continue
        peaks = [number.strip.to_ink_column((c.peak_frame + 0.5) * FRAME_WIDTH) for c in characters if c.char.isdigit()]
        offsets += [(peak - centre) / number.strip.line_height for peak, centre in zip(peaks, number.digit_columns)]
    return float(np.median(offsets)) if offsets else 0.0


def export_line_model(checkpoint: str, datamodule, output_dir: str, command: str, training_seconds: float,
                      log_dir: str) -> dict:
    """Measure the best line-reader checkpoint on the validation numbers, fit its unsure threshold, save it."""
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    module = LineReader.load_from_checkpoint(checkpoint, map_location="cpu")
    predicted, truth, confidences = read_validation_lines(module.net.float(), datamodule.val_dataloader())
    # a model that reads no character at all (trained far too briefly) flags everything it ever reads unsure
    min_confidence = float(np.quantile(confidences, UNSURE_RATE_ON_VALIDATION)) if confidences else 1.0
    peak_offset = fit_peak_offset(module.net, datamodule.val_set)
    net = LineNet(widths=module.hparams.widths, context=module.hparams.context, dropout=module.hparams.dropout,
                  min_confidence=round(min_confidence, 4), peak_offset=round(peak_offset, 4))
    net.load_state_dict(module.net.state_dict())
    metrics = {
        "val_numbers": len(truth),
        "val_exact_match": round(float(np.mean([p == t for p, t in zip(predicted, truth)])), 5),
        "min_confidence": round(min_confidence, 4),
        "peak_offset": round(peak_offset, 4),
        "training_seconds": round(training_seconds, 1),
    }
    save_model_folder(net, output, metrics, Path(log_dir) / "config.yaml", command, module.hparams.get("init_from"))
    return metrics
