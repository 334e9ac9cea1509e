"""Accuracy on realistic images (photos, scans, sketches...) — hdr's preprocessing vs the naive resize.

    python bench/bench_realistic.py                 # shipped model; generates the set if missing or out of date
    python bench/bench_realistic.py --model path/to/model_folder --per-kind 100
    python bench/bench_realistic.py --record        # also adds the figures to the model's metrics.json and card
    python bench/bench_realistic.py --digits validation --data bench/data/realistic_dev --output /tmp/dev.json

For every kind of bench/realistic_set.py: hdr accuracy (``preprocess`` + model), the naive baseline
(grayscale + ``resize((28, 28))``, no inversion, same model), the rate of predictions flagged unsure,
and the time per image to decode and preprocess the file's bytes as ``Recognizer.predict`` does (a JPEG is decoded
at reduced scale when that is enough). Then "not a digit": the share of non-digit
images (shapes, scribbles, letters, noise, Fashion-MNIST if installed) flagged unsure or blank at the
model's ``min_confidence`` and ``min_evidence``, next to the share of real digits flagged. Prints a table and writes
``bench/results/realistic.json``.
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import binomtest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from hdr import Recognizer  # noqa: E402
from hdr.hub import card_with_metrics  # noqa: E402
from hdr.loading import InvalidImageError, load_image  # noqa: E402
from hdr.preprocess import Preprocessed, preprocess  # noqa: E402
from non_digits import non_digit_images  # noqa: E402
from realistic_set import DEFAULT_DATA_ROOT, DEFAULT_OUTPUT, KINDS, generate, is_stale, render  # noqa: E402

from hdr import mnist  # noqa: E402

RESULTS = REPO / "bench" / "results" / "realistic.json"


def labelled_files(folder: Path) -> list[tuple[Path, int]]:
    """(path, digit) for every image of an ImageFolder-style kind folder, sorted."""
    return sorted((path, int(path.parent.name)) for path in folder.glob("[0-9]/*") if path.is_file())


def naive_input(image: Image.Image) -> np.ndarray:
    """What a naive app feeds the model: grayscale, squashed to 28×28, no inversion."""
    return np.asarray(image.convert("L").resize((28, 28)), dtype=np.float32) / 255


def prepare_inputs(files: list[tuple[Path, int]]) -> tuple[list[Preprocessed | None], list[np.ndarray], list[float]]:
    """For every file: hdr's preprocessing of its bytes, as ``predict`` does it (None where it refused the image), the
    naive input, and the milliseconds hdr took from the bytes to its input. One image in memory at a time."""
    hdr, naive, milliseconds = [], [], []
    for path, _ in files:
        data = path.read_bytes()
        started = time.perf_counter()
        try:
            hdr.append(preprocess(data))
        except InvalidImageError:
            hdr.append(None)
        milliseconds.append((time.perf_counter() - started) * 1000)
        naive.append(naive_input(load_image(data)))
    return hdr, naive, milliseconds


def accuracy_interval(correct: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy measured on ``n`` images: where the kind's true accuracy plausibly
    lies. With 300 images, a kind read 98.0% may truly be anywhere in about 95.7–99.1%."""
    interval = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    return round(float(interval.low), 4), round(float(interval.high), 4)


def evaluate_kind(recognizer: Recognizer, files: list[tuple[Path, int]]) -> dict:
    """Accuracy of hdr and of the naive baseline, unsure and refusal rates (and how many images were taken for
    several digits), and timing on one kind."""
    labels = np.array([label for _, label in files])
    prepared, naive_inputs, milliseconds = prepare_inputs(files)
    accepted = [i for i, item in enumerate(prepared) if item is not None]
    predictions = recognizer.classify_prepared([prepared[i] for i in accepted])
    digits = np.full(len(files), -1)
    unsure = np.ones(len(files), bool)  # a refused image counts as flagged
    for i, prediction in zip(accepted, predictions):
        digits[i], unsure[i] = prediction.digit, prediction.unsure
    naive = np.array([p.digit for p in recognizer.classify(naive_inputs)])
    correct = digits == labels
    return {
        "n": len(files),
        "hdr_accuracy": round(float(correct.mean()), 4),
        "hdr_accuracy_95ci": accuracy_interval(int(correct.sum()), len(files)),
        "naive_accuracy": round(float((naive == labels).mean()), 4),
        "unsure_rate": round(float(unsure.mean()), 4),
        "refused": len(files) - len(accepted),
        "several_digits": sum(prediction.several_digits for prediction in predictions),
        "accuracy_when_sure": round(float(correct[~unsure].mean()), 4) if (~unsure).any() else None,
        "preprocess_ms_median": round(float(np.median(milliseconds)), 1),
        "preprocess_ms_p95": round(float(np.percentile(milliseconds, 95)), 1),
        "errors": [f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: read {digit}"
                   for (path, _), digit, ok in zip(files, digits, correct) if not ok],
    }


def evaluate_non_digits(recognizer: Recognizer, per_shape: int) -> dict | None:
    """Share of non-digit images flagged (unsure, or refused as blank), per kind of non-digit; None when asked for
    none (``per_shape`` 0)."""
    if per_shape <= 0:
        return None
    flagged: dict[str, list[bool]] = {}
    for kind, image in non_digit_images(per_shape, fashion=5 * per_shape):
        try:
            flag = recognizer.predict(image).unsure
        except InvalidImageError:
            flag = True
        flagged.setdefault(kind, []).append(flag)
    per_kind = {kind: round(float(np.mean(flags)), 4) for kind, flags in flagged.items()}
    everything = [flag for flags in flagged.values() for flag in flags]
    return {"n": len(everything), "flagged_rate": round(float(np.mean(everything)), 4), "per_kind": per_kind}


def time_large_photo(data_root: Path, repeats: int = 10) -> dict:
    """Milliseconds to preprocess a 4000×3000 phone photo: from the decoded image, and from its JPEG bytes."""
    images, _ = mnist.load(data_root, train=False)
    photo = render(images[0].numpy(), "photo", seed=0).resize((4000, 3000), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    jpeg_bytes = buffer.getvalue()
    timings = {}
    for name, source in (("decoded_image", photo), ("jpeg_bytes", jpeg_bytes)):
        preprocess(source)  # warm-up
        milliseconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            preprocess(source)
            milliseconds.append((time.perf_counter() - started) * 1000)
        timings[f"{name}_ms_median"] = round(float(np.median(milliseconds)), 1)
    return timings


def print_table(results: dict, non_digits: dict | None, thresholds: str) -> None:
    header = (f"{'kind':<20} {'n':>5} {'hdr acc':>8} {'95% interval':>13} {'naive acc':>10} {'unsure':>7} "
              f"{'several':>8} {'refused':>8} {'ms/img':>7}")
    print(header)
    print("-" * len(header))
    for kind, row in results.items():
        low, high = row["hdr_accuracy_95ci"]
        print(f"{kind:<20} {row['n']:>5} {row['hdr_accuracy']:>8.2%} {f'{low:.1%}–{high:.1%}':>13} "
              f"{row['naive_accuracy']:>10.2%} {row['unsure_rate']:>7.2%} {row['several_digits']:>8} "
              f"{row['refused']:>8} {row['preprocess_ms_median']:>7.1f}")
    digits_flagged = np.average([row["unsure_rate"] for row in results.values()],
                                weights=[row["n"] for row in results.values()])
    if non_digits is None:
        print(f"\nNot a digit: not measured (--non-digits-per-shape 0); {digits_flagged:.1%} of real digits flagged")
        return
    print(f"\nNot a digit ({thresholds}): {non_digits['flagged_rate']:.1%} of "
          f"{non_digits['n']} non-digit images flagged, vs {digits_flagged:.1%} of real digits")
    print("  " + ", ".join(f"{kind} {rate:.0%}" for kind, rate in non_digits["per_kind"].items()))


def record_in_model_folder(folder: Path, report: dict) -> None:
    """Add the benchmark's figures to a model folder's ``metrics.json`` and to its card's metrics table."""
    accuracies = {kind: row["hdr_accuracy"] for kind, row in report["kinds"].items()}
    per_kind = next(iter(report["kinds"].values()))["n"]
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics.update({
        "realistic_accuracy_mean": round(sum(accuracies.values()) / len(accuracies), 4),
        "realistic_accuracy_min": min(accuracies.values()),
        "realistic_benchmark": f"python bench/bench_realistic.py ({per_kind} per kind, {len(accuracies)} kinds, "
                               + ", ".join(f"{kind} {value:.1%}" for kind, value in accuracies.items()) + ")",
    })
    if report["non_digits"] is not None:
        metrics["realistic_not_a_digit_flagged"] = report["non_digits"]["flagged_rate"]
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    card = folder / "README.md"
    card.write_text(card_with_metrics(card.read_text(), metrics_path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or hub repo id (default: the shipped model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_OUTPUT,
                        help="the realistic set (generated where missing or drawn by an older realistic_set.py)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="MNIST root, for generating")
    parser.add_argument("--per-kind", type=int, default=300, help="images per kind when generating")
    parser.add_argument("--digits", choices=("test", "validation"), default="test",
                        help="MNIST digits to draw when generating: test (the benchmark) or validation (a dev set)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--non-digits-per-shape", type=int, default=40,
                        help="non-digit images per drawn shape (and 5× as many Fashion-MNIST images)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--record", action="store_true",
                        help="add the figures to the model folder's metrics.json and model card (not for hub models)")
    arguments = parser.parse_args()

    missing = [kind for kind in arguments.kinds
               if not labelled_files(arguments.data / kind) or is_stale(arguments.data / kind)]
    if missing:
        generate(arguments.data, arguments.data_root, arguments.per_kind, missing, arguments.digits)
    recognizer = Recognizer.from_pretrained(arguments.model)
    if arguments.record and recognizer.source.kind == "hub":
        parser.error("--record writes into a model folder: pass a local folder or the shipped model, not a hub repo")
    results = {}
    for kind in arguments.kinds:
        results[kind] = evaluate_kind(recognizer, labelled_files(arguments.data / kind))
        print(f"{kind}: done", file=sys.stderr, flush=True)
    non_digits = evaluate_non_digits(recognizer, arguments.non_digits_per_shape)
    min_confidence, min_evidence = recognizer.model.min_confidence, recognizer.model.min_evidence
    print_table(results, non_digits, f"min_confidence {min_confidence}, min_evidence {min_evidence}")
    speed = time_large_photo(arguments.data_root)
    print(f"4000×3000 photo: {speed['decoded_image_ms_median']:.0f} ms to preprocess the decoded image, "
          f"{speed['jpeg_bytes_ms_median']:.0f} ms from JPEG bytes (median of 10)")

    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": "python " + " ".join(sys.argv),
        "model": recognizer.source.to_dict(),
        "min_confidence": min_confidence,
        "min_evidence": min_evidence,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "kinds": results,
        "non_digits": non_digits,
        "speed_4000x3000": speed,
    }
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    if arguments.record:
        record_in_model_folder(Path(recognizer.source.path), report)
        print(f"recorded in {recognizer.source.path}/metrics.json and its README.md")
    print(f"\nwrote {arguments.output.relative_to(REPO) if arguments.output.is_relative_to(REPO) else arguments.output}")


if __name__ == "__main__":
    main()
