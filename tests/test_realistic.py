"""The realistic set generator and its benchmark, run for real on a small set."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from bench_realistic import accuracy_interval  # noqa: E402
from realistic_set import KINDS, STAMP_FILE, UNFINISHED, generate, is_stale, render  # noqa: E402


def test_rendering_is_deterministic(mnist_test):
    images, _ = mnist_test
    first = np.asarray(render(images[0], "sketch_white", seed=5))
    again = np.asarray(render(images[0], "sketch_white", seed=5))
    other = np.asarray(render(images[0], "sketch_white", seed=6))
    assert np.array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)


def test_a_digit_much_wider_than_tall_is_drawn_in_every_kind(mnist_train):
    images, _ = mnist_train
    wide = images[59734]  # ink 2.5 times wider than tall: sized by its height, wider than some canvases
    for kind in KINDS:
        for seed in (0, 4, 6):
            image = render(wide, kind, seed=seed)
            pixels = np.asarray(image)[:, :, 3] if image.mode == "RGBA" else np.asarray(image.convert("L"))
            ink = np.abs(pixels.astype(int) - int(np.median(pixels))) > 60
            assert ink.sum() >= 10, (kind, seed)  # the digit was drawn


def test_sketchpad_layer_looks_like_gradios(mnist_test):
    images, _ = mnist_test
    layer = render(images[0], "sketch_transparent", seed=1)
    pixels = np.asarray(layer)
    assert layer.mode == "RGBA" and 400 <= max(layer.size) <= 800
    assert pixels[:, :, :3].max() == 0, "colour channels are all 0; the strokes live in alpha"
    assert 0.01 < (pixels[:, :, 3] > 128).mean() < 0.3


def test_generate_writes_a_balanced_image_folder(tmp_path, data_root):
    generate(tmp_path, data_root, per_kind=20, kinds=["small", "sketch_transparent"])
    for kind in ("small", "sketch_transparent"):
        files = sorted((tmp_path / kind).glob("*/*.png"))
        assert len(files) == 20
        assert sorted({f.parent.name for f in files}) == [str(d) for d in range(10)]
        assert all(len(list((tmp_path / kind / str(d)).iterdir())) == 2 for d in range(10))
        with Image.open(files[0]) as image:
            assert image.mode == ("RGBA" if kind == "sketch_transparent" else "L")


def test_a_kind_drawn_by_another_version_of_the_generator_is_stale_and_drawn_afresh(tmp_path, data_root):
    folder = tmp_path / "small"
    (folder / "3").mkdir(parents=True)
    (folder / "3" / "old.png").write_bytes(b"an image from before")
    assert not is_stale(folder), "a folder the generator did not stamp may hold someone's own images"
    (folder / STAMP_FILE).write_text("an older version\n")
    assert is_stale(folder)
    generate(tmp_path, data_root, per_kind=10, kinds=["small"])
    assert not is_stale(folder)
    assert not (folder / "3" / "old.png").exists() and len(list(folder.glob("*/*.png"))) == 10

    own = tmp_path / "scan"  # someone's own images where a kind would go: generating adds, deletes nothing
    (own / "7").mkdir(parents=True)
    (own / "7" / "mine.png").write_bytes(b"a photo of mine")
    generate(tmp_path, data_root, per_kind=10, kinds=["scan"])
    assert (own / "7" / "mine.png").exists()
    assert not (own / STAMP_FILE).exists(), "stamped, the folder would be deleted by a later version of the generator"

    (folder / STAMP_FILE).write_text(UNFINISHED)  # drawing was interrupted
    assert is_stale(folder)


def test_accuracy_interval_says_how_precisely_a_kind_is_measured():
    # The Wilson score interval: 8 of 10 → 0.490–0.943, none of 10 → 0–0.278.
    assert accuracy_interval(8, 10) == (0.4902, 0.9433)
    assert accuracy_interval(0, 10) == (0.0, 0.2775)
    # 98% of 300 images cannot tell a kind at 99% from one at 96%; 98% of 3,000 can.
    low, high = accuracy_interval(294, 300)
    assert low < 0.96 and high > 0.99
    low, high = accuracy_interval(2940, 3000)
    assert 0.97 < low and high < 0.99


def run_benchmark(tmp_path: Path, data_root: Path, *options: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """Run bench_realistic.py with ``--record`` into a copy of the shipped model (it writes into the folder): the
    finished process, the report's path and the model copy."""
    output = tmp_path / "realistic.json"
    model = shutil.copytree(REPO / "checkpoints" / "hdr-mnist", tmp_path / "model")
    command = [sys.executable, str(REPO / "bench" / "bench_realistic.py"), "--data", str(tmp_path / "set"),
               "--data-root", str(data_root), "--output", str(output), "--model", str(model), "--record", *options]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr
    return run, output, model


def test_benchmark_beats_the_naive_resize_and_writes_json(tmp_path, data_root):
    run, output, model = run_benchmark(tmp_path, data_root, "--per-kind", "20", "--kinds", "sketch_transparent",
                                       "small", "--non-digits-per-shape", "2")
    assert "sketch_transparent" in run.stdout and "Not a digit" in run.stdout
    report = json.loads(output.read_text())
    transparent = report["kinds"]["sketch_transparent"]
    assert transparent["n"] == 20
    assert transparent["hdr_accuracy"] >= 0.9
    low, high = transparent["hdr_accuracy_95ci"]
    assert low <= transparent["hdr_accuracy"] <= high and high - low > 0.05  # 20 images pin it down loosely
    assert transparent["naive_accuracy"] <= 0.3, "a naive grayscale of a transparent layer is all black"
    assert report["kinds"]["small"]["hdr_accuracy"] >= 0.9
    assert transparent["several_digits"] <= 1  # single digits are not taken for numbers
    assert 0 <= report["non_digits"]["flagged_rate"] <= 1 and report["non_digits"]["n"] >= 12

    # --record: the model's metrics.json and card now carry these figures.
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["realistic_not_a_digit_flagged"] == report["non_digits"]["flagged_rate"]
    assert metrics["realistic_accuracy_min"] == min(transparent["hdr_accuracy"], report["kinds"]["small"]["hdr_accuracy"])
    assert "(20 per kind, 2 kinds, sketch_transparent" in metrics["realistic_benchmark"]
    assert f"| realistic_accuracy_min | {metrics['realistic_accuracy_min']} |" in (model / "README.md").read_text()


def test_benchmark_asked_for_no_non_digits_says_so_and_writes_valid_json(tmp_path, data_root):
    recorded_before = json.loads((REPO / "checkpoints" / "hdr-mnist" / "metrics.json").read_text())[
        "realistic_not_a_digit_flagged"]
    run, output, model = run_benchmark(tmp_path, data_root, "--per-kind", "10", "--kinds", "small",
                                       "--non-digits-per-shape", "0")
    assert "Not a digit: not measured" in run.stdout and "nan" not in run.stdout

    def no_nan(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(output.read_text(), parse_constant=no_nan)["non_digits"] is None
    metrics = json.loads((model / "metrics.json").read_text(), parse_constant=no_nan)
    assert metrics["realistic_not_a_digit_flagged"] == recorded_before  # not measured, so not overwritten
    assert "(10 per kind, 1 kinds, small" in metrics["realistic_benchmark"]
