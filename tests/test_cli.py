"""``python -m hdr predict`` and ``python -m hdr evaluate`` as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from tests.conftest import REPO
from tests.test_recognizer import paper_digit


def hdr(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hdr", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_predict_prints_each_digit_and_reports_bad_files(tmp_path, mnist_test):
    images, labels = mnist_test
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"digit{index}.png")
        Image.fromarray(paper_digit(images[index])).save(paths[-1])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")

    result = hdr("predict", *map(str, paths), str(broken), "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["digit"] for row in rows[:3]] == list(labels[:3])
    assert "error" in rows[3] and result.returncode == 1

    plain = hdr("predict", str(paths[0]))
    assert plain.returncode == 0 and plain.stdout.startswith(f"{paths[0]}: {labels[0]} (")


def test_evaluate_on_a_labelled_folder(tmp_path, mnist_test):
    images, labels = mnist_test
    for index in range(30):
        folder = tmp_path / "set" / str(labels[index])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(paper_digit(images[index], 140)).save(folder / f"{index}.png")
    result = hdr("evaluate", "--folder", str(tmp_path / "set"), "--output", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images"] == 30 and report["accuracy"] >= 0.9
    assert (tmp_path / "out" / "confusion_matrix.png").stat().st_size > 1000


def test_evaluate_on_mnist_test(tmp_path, data_root):
    result = hdr("evaluate", "--data-root", str(data_root), "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert report["images"] == 10000 and report["accuracy"] >= 0.996
    assert f"MNIST test: accuracy {report['accuracy']:.2%} on 10000 images" in result.stdout
    assert len(report["per_class_accuracy"]) == 10
