"""Benchmark of reading whole numbers on the multi-digit set, next to a plain connected-components baseline.

    python -m bench.bench_read                  # shipped model, generates bench/data/multidigit if missing
    python -m bench.bench_read --model path/or/repo-id --line-reader path/to/line/reader --limit 50

Exact match compares the whole text (digits, separators, spaces); digit accuracy is
1 − edit distance / length over the digits alone. "Boxes" is the share of digits whose box lies on the digit
(intersection over union with its true box at least 0.5), over the numbers read with as many digits as they hold.
"Flagged" is the share of readings marked ``unsure`` (an unreadable image counts as flagged), next to the exact
match of the others; overall, the exact match of the readings whose confidence reaches a few thresholds says how
far ``Reading.confidence`` can be trusted. "Several" is the share of images that the one-digit route (``predict``)
takes for several digits instead of answering one digit. "Misread alone" is the share of numbers holding a digit
that the digit classifier misreads even on its own, in its original MNIST form (the set records each digit's
source), next to the exact match of the other numbers: how much of what is lost is MNIST's own ambiguous digits
rather than reading. The baseline classifies each connected component left to right (no merging, splitting or
separators). Prints a table, writes ``bench/results/read.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.multidigit_set import SUBSETS, digit_pool, write_set
from hdr import Recognizer
from hdr.reader import Reading
from hdr.lines import INK_THRESHOLD, SPECK_AREA, connected_components, typical_height
from hdr.loading import InvalidImageError, load_image
from hdr.preprocess import BlankImageError, find_ink, to_model_input

BATCH = 16
CONFIDENCE_THRESHOLDS = (0.5, 0.9, 0.99)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    row = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, char_b in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (char_a != char_b))
    return row[-1]


def digit_accuracy(predicted: str, truth: str) -> float:
    """1 − edit distance / length over the digits of both strings (0 at worst)."""
    predicted, truth = "".join(filter(str.isdigit, predicted)), "".join(filter(str.isdigit, truth))
    return max(0.0, 1 - edit_distance(predicted, truth) / len(truth))


def box_overlap(a, b) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    width, height = max(0, min(a[2], b[2]) - max(a[0], b[0])), max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def boxes_on_digits(readings: list[Reading | None], records: list[dict]) -> np.ndarray:
    """For each digit of the numbers read with as many digits as they hold: whether its box lies on the digit
    (intersection over union with the digit's true box at least 0.5)."""
    return np.array([box_overlap(digit.box, truth) >= 0.5
                     for reading, record in zip(readings, records)
                     if reading is not None and len(reading.digits) == len(record.get("boxes", ()))
                     for digit, truth in zip(reading.digits, record["boxes"])], bool)


def read_all(recognizer: Recognizer, images: list[Image.Image]) -> list[Reading | None]:
    """The reading of each image, in batches; ``None`` for an image that cannot be read."""
    readings = []
    for start in range(0, len(images), BATCH):
        for result in recognizer.read_each(images[start : start + BATCH]):
            if isinstance(result, Exception) and not isinstance(result, InvalidImageError):
                raise result
            readings.append(result if isinstance(result, Reading) else None)
    return readings


def baseline_text(recognizer: Recognizer, image: Image.Image) -> str:
    """Plain connected components of the reader's own ink map, left to right, each classified as one digit."""
    ink = find_ink(load_image(image), single_digit=False).upright()
    components = connected_components(ink)
    height = typical_height(components)
    components = [c for c in components if (c.ink > INK_THRESHOLD).sum() >= SPECK_AREA * height**2]
    components.sort(key=lambda c: c.box[0])
    inputs = [model_input for c in components if (model_input := model_input_or_none(c.ink)) is not None]
    return "".join(str(p.digit) for p in recognizer.classify(inputs))


def model_input_or_none(ink: np.ndarray) -> np.ndarray | None:
    """The 28×28 classifier input of a component, or ``None`` when it holds too little ink."""
    try:
        return to_model_input(ink)
    except BlankImageError:
        return None


def misread_alone(recognizer: Recognizer, records: list[dict], data_root: str) -> np.ndarray | None:
    """Per record: whether it holds a digit the digit classifier misreads on its own, in its original MNIST form.
    ``None`` when the set does not record where its digits came from (generated before it did)."""
    if not all("sources" in r for r in records):
        return None
    hard = np.zeros(len(records), bool)
    for digits in {r["digits"] for r in records}:
        pool = digit_pool(data_root, digits)
        indices = sorted({i for r in records if r["digits"] == digits for i in r["sources"]})
        predictions = recognizer.classify(list(pool.images[indices].astype(np.float32) / 255))
        misread = {i for i, p in zip(indices, predictions) if p.digit != pool.labels[i]}
        hard |= [r["digits"] == digits and not misread.isdisjoint(r["sources"]) for r in records]
    return hard


def evaluate(recognizer: Recognizer, data: Path, records: list[dict], limit: int, data_root: str) -> dict:
    """Exact match and digit accuracy per subset for the reader and the baseline."""
    hard = misread_alone(recognizer, records, data_root)
    results, right, flagged, confidences, misread, on_digits = {}, [], [], [], [], []
    for subset in SUBSETS:
        indices = [i for i, r in enumerate(records) if r["subset"] == subset][:limit]
        misread.append(hard[indices] if hard is not None else None)
        chosen = [records[i] for i in indices]
        images = [Image.open(data / r["file"]) for r in chosen]
        for image in images:
            image.load()
        started = time.perf_counter()
        readings = read_all(recognizer, images)
        seconds = time.perf_counter() - started
        texts = [reading.text if reading else "" for reading in readings]
        baseline = [baseline_text(recognizer, image) for image in images]
        truths = [r["text"] for r in chosen]
        right.append(np.array([t == p for t, p in zip(truths, texts)]))
        flagged.append(np.array([reading is None or reading.unsure for reading in readings]))
        confidences.append(np.array([reading.confidence if reading else 0.0 for reading in readings]))
        on_digits.append(boxes_on_digits(readings, chosen))
        results[subset] = {
            "n": len(chosen),
            "exact": float(right[-1].mean()),
            **flag_figures(right[-1], flagged[-1]),
            **misread_figures(right[-1], misread[-1]),
            "digit_accuracy": float(np.mean([digit_accuracy(p, t) for t, p in zip(truths, texts)])),
            "boxes_on_digits": share(on_digits[-1]),
            "baseline_exact": float(np.mean([t == p for t, p in zip(truths, baseline)])),
            "baseline_digit_accuracy": float(np.mean([digit_accuracy(p, t) for t, p in zip(truths, baseline)])),
            "ms_per_image": 1000 * seconds / max(1, len(chosen)),
            "several_digits": float(np.mean([p.several_digits for p in recognizer.predict_batch(images)])),
            "errors": [{"file": r["file"], "truth": t, "read": p} for r, t, p in zip(chosen, truths, texts) if t != p],
        }
    weights = np.array([r["n"] for r in results.values()])
    overall = {key: float(np.average([r[key] for r in results.values()], weights=weights))
               for key in ("exact", "digit_accuracy", "baseline_exact", "baseline_digit_accuracy", "ms_per_image",
                           "several_digits")}
    right, flagged, confidences = np.concatenate(right), np.concatenate(flagged), np.concatenate(confidences)
    overall.update(flag_figures(right, flagged))
    overall.update(misread_figures(right, np.concatenate(misread) if hard is not None else None))
    overall["boxes_on_digits"] = share(np.concatenate(on_digits))
    overall["by_confidence"] = [{"at_least": threshold, "share": float((confidences >= threshold).mean()),
                                 "exact": float(right[confidences >= threshold].mean())}
                                for threshold in CONFIDENCE_THRESHOLDS if (confidences >= threshold).any()]
    overall["n"] = int(weights.sum())
    results["overall"] = overall
    return results


def flag_figures(right: np.ndarray, flagged: np.ndarray) -> dict:
    """The share of readings flagged unsure, and the exact match of the others (None when all are flagged)."""
    return {"flagged": float(flagged.mean()),
            "exact_when_not_flagged": float(right[~flagged].mean()) if (~flagged).any() else None}


def misread_figures(right: np.ndarray, misread: np.ndarray | None) -> dict:
    """The share of numbers holding a digit the classifier misreads alone, and the exact match of the others."""
    if misread is None:
        return {"misread_alone": None, "exact_others": None}
    return {"misread_alone": float(misread.mean()),
            "exact_others": float(right[~misread].mean()) if (~misread).any() else None}


def share(flags: np.ndarray) -> float | None:
    """The share of true flags (None when there are none to count)."""
    return float(flags.mean()) if flags.size else None


def percent(value: float | None) -> str:
    return "-" if value is None else format(value, ".1%")


def print_table(results: dict) -> None:
    print(f"{'subset':<12} {'n':>5} {'exact':>7} {'digits':>7} {'boxes':>6} {'flagged':>8} "
          f"{'exact if not flagged':>21} {'misread alone':>14} {'exact others':>13} {'base exact':>11} "
          f"{'base digits':>12} {'ms/img':>7} {'several':>8}")
    for subset, r in results.items():
        print(f"{subset:<12} {r['n']:>5} {r['exact']:>7.1%} {r['digit_accuracy']:>7.1%} "
              f"{percent(r['boxes_on_digits']):>6} {r['flagged']:>8.1%} "
              f"{percent(r['exact_when_not_flagged']):>21} {percent(r['misread_alone']):>14} "
              f"{percent(r['exact_others']):>13} "
              f"{r['baseline_exact']:>11.1%} {r['baseline_digit_accuracy']:>12.1%} {r['ms_per_image']:>7.1f} "
              f"{r['several_digits']:>8.1%}")
    for row in results["overall"]["by_confidence"]:
        print(f"confidence >= {row['at_least']}: {row['share']:.1%} of the numbers, {row['exact']:.1%} of them exact")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="digit model folder or hub repo id (default: the shipped model)")
    parser.add_argument("--line-reader", default=None,
                        help="line reader folder or hub repo id (default: the shipped one)")
    parser.add_argument("--data", type=Path, default=Path("bench/data/multidigit"))
    parser.add_argument("--data-root", default="../shared/data",
                        help="MNIST root: to generate the set if missing, and to look at its digits alone")
    parser.add_argument("--per-subset", type=int, default=200, help="images per subset when generating")
    parser.add_argument("--limit", type=int, default=10**9, help="evaluate at most this many images per subset")
    parser.add_argument("--output", type=Path, default=Path("bench/results/read.json"))
    args = parser.parse_args()
    if not (args.data / "labels.json").exists():
        write_set(args.data, args.data_root, "test", args.per_subset)
    records = json.loads((args.data / "labels.json").read_text())
    recognizer = Recognizer.from_pretrained(args.model, line_reader=args.line_reader)
    results = evaluate(recognizer, args.data, records, args.limit, args.data_root)
    print_table(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": "python -m bench.bench_read " + " ".join(sys.argv[1:]), "model": recognizer.source.to_dict(),
              "line_reader": recognizer.line_reader_source.to_dict(), "results": results}
    args.output.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
