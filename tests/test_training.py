"""End to end: train.py on a few hundred images, resume from last.ckpt, export in the Hugging Face format."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np

from hdr import Recognizer
from tests.conftest import REPO


def run_train(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "train.py", "--config", "configs/smoke.yaml",
               "--data.data_root", str(REPO.parent / "shared" / "data"),
               "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
               "--export_dir", str(tmp_path / "model"), *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_tiny_training_run_exports_a_loadable_model_with_a_model_card(tmp_path, data_root):
    result = run_train(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    model_dir = tmp_path / "model"
    for name in ("config.json", "model.safetensors", "README.md", "metrics.json",
                 "learning_curves.png", "confusion_matrix.png", "train_config.yaml"):
        assert (model_dir / name).is_file(), name
    config = json.loads((model_dir / "config.json").read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert config["widths"] == [8, 16] and config["temperature"] > 0
    assert config["min_confidence"] == metrics["min_confidence"] and config["min_evidence"] == metrics["min_evidence"]
    card = (model_dir / "README.md").read_text()
    assert f"(log-sum-exp of the calibrated logits) is below {metrics['min_evidence']}" in card
    assert f"{metrics['mnist_test_accuracy']}" in card
    assert "python train.py --config configs/smoke.yaml" in card
    assert "![confusion matrix](confusion_matrix.png)" in card
    assert metrics["mnist_test_accuracy"] > 0.2  # 512 images, one epoch: far above chance (0.1)

    recognizer = Recognizer.from_pretrained(str(model_dir))
    prediction = recognizer.classify([np.zeros((28, 28), np.float32)])[0]
    assert len(prediction.probabilities) == 10


def test_an_interrupted_run_resumes_from_last_checkpoint(tmp_path, data_root):
    # A run of 2 epochs stopped after the first (EarlyStopping's threshold is met at once), then resumed.
    stop_after_first_epoch = ["--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping",
                              "--trainer.callbacks.monitor=val/loss", "--trainer.callbacks.stopping_threshold=100"]
    first = run_train(tmp_path, "--trainer.max_epochs", "2", *stop_after_first_epoch)
    assert first.returncode == 0, first.stderr[-3000:]
    last = tmp_path / "runs/smoke/version_0/checkpoints/last.ckpt"
    result = run_train(tmp_path, "--ckpt_path", str(last), "--trainer.max_epochs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "runs/smoke/version_1/metrics.csv") as handle:
        validated = {row["epoch"] for row in csv.DictReader(handle) if row.get("val/acc")}
    assert validated == {"1"}  # only the second epoch was trained: the first came from last.ckpt


def test_tiny_line_reader_run_exports_a_loadable_line_model(tmp_path, data_root):
    command = [sys.executable, "train.py", "--config", "configs/lines.yaml",
               "--data.data_root", str(REPO.parent / "shared" / "data"),
               "--trainer.max_epochs", "1", "--data.train_numbers", "64", "--data.val_numbers", "32",
               "--data.num_workers", "0", "--model.widths", "[8, 16, 32]", "--model.context", "16",
               "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"), "--export_dir", str(tmp_path / "lines")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    model_dir = tmp_path / "lines"
    for name in ("config.json", "model.safetensors", "README.md", "metrics.json", "train_config.yaml"):
        assert (model_dir / name).is_file(), name
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["val_numbers"] == 32 and 0 <= metrics["val_exact_match"] <= 1
    assert -1 < metrics["peak_offset"] < 1  # fitted, and 0 where the tiny model reads no number right
    assert "python train.py --config configs/lines.yaml" in (model_dir / "README.md").read_text()

    recognizer = Recognizer.from_pretrained(line_reader=model_dir)
    assert recognizer.line_reader.context[0][0].in_channels == 16  # the tiny model, not the shipped one

    # A second stage from that export: its card says that its training time is its own only.
    second = [*command[:-1], str(tmp_path / "lines2"), "--model.init_from", str(model_dir)]
    result = subprocess.run(second, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    card = " ".join((tmp_path / "lines2" / "README.md").read_text().split())
    assert f"for this run only: it started from the weights of `{model_dir}`" in card
