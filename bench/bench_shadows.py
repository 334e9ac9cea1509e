"""Digits photographed on a page half in shadow: how many are read right and sure, and how many wrong and sure.

    python bench/bench_shadows.py                # 30 MNIST test digits × 6 shadows
    python bench/bench_shadows.py --digits 10

Each picture is a 1200×900 page (paper at 225) with an MNIST test digit drawn 400 px tall in its middle, its left
part darkened to 45% or 65% of its brightness; the shadow's edge runs through the digit (at 480–720 px, by digit) and
is sharp or blurred (Gaussian, σ 15 or 40 px); a 1.5 px camera blur over all. Prints a table (per shadow: right and
sure, wrong and sure, unsure) and writes ``bench/results/shadows.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from hdr import Recognizer, mnist  # noqa: E402
from realistic_set import DEFAULT_DATA_ROOT  # noqa: E402

RESULTS = REPO / "bench" / "results" / "shadows.json"
SOFTNESS = (0, 15, 40)  # σ of the shadow's edge, px
DARKNESS = (0.45, 0.65)  # the shadowed paper's brightness, as a share of the lit paper's


def page_in_shadow(digit: np.ndarray, edge: int, darkness: float, softness: float) -> Image.Image:
    """The page with ``digit`` (uint8 28×28, MNIST's white on black) in its middle, shadowed left of ``edge``."""
    page = np.full((900, 1200), 225, np.float32)
    ink = np.asarray(Image.fromarray(255 - digit).resize((400, 400), Image.Resampling.BICUBIC), np.float32)
    page[250:650, 400:800] = np.minimum(page[250:650, 400:800], ink)
    shade = np.ones_like(page)
    shade[:, :edge] = darkness
    if softness:
        shade = ndi.gaussian_filter(shade, softness)
    return Image.fromarray((page * shade).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=30, help="MNIST test digits per shadow (the first ones)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="folder holding MNIST/raw")
    parser.add_argument("--output", default=str(RESULTS))
    arguments = parser.parse_args()
    images, labels = mnist.load(arguments.data_root, train=False)
    recognizer = Recognizer.from_pretrained()
    rows = []
    for softness in SOFTNESS:
        for darkness in DARKNESS:
            counts = {"right_and_sure": 0, "wrong_and_sure": 0, "unsure": 0}
            for index in range(arguments.digits):
                picture = page_in_shadow(images[index].numpy(), 480 + (index % 5) * 60, darkness, softness)
                prediction = recognizer.predict(picture)
                if prediction.unsure:
                    counts["unsure"] += 1
                else:
                    counts["right_and_sure" if prediction.digit == int(labels[index]) else "wrong_and_sure"] += 1
            rows.append({"softness_px": softness, "darkness": darkness, "n": arguments.digits, **counts})
    print(f"{'edge σ':>7} {'shadow':>7} {'n':>4} {'right, sure':>12} {'wrong, sure':>12} {'unsure':>7}")
    for row in rows:
        print(f"{row['softness_px']:>7} {row['darkness']:>7} {row['n']:>4} {row['right_and_sure']:>12} "
              f"{row['wrong_and_sure']:>12} {row['unsure']:>7}")
    total = {key: sum(row[key] for row in rows) for key in ("n", "right_and_sure", "wrong_and_sure", "unsure")}
    print(f"{'all':>15} {total['n']:>4} {total['right_and_sure']:>12} {total['wrong_and_sure']:>12} {total['unsure']:>7}")
    report = {"command": "python bench/bench_shadows.py " + " ".join(sys.argv[1:]), "model": recognizer.source.to_dict(),
              "machine": platform.platform(), "rows": rows, "total": total}
    Path(arguments.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {arguments.output}")


if __name__ == "__main__":
    main()
