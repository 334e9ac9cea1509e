"""The app in a real browser (headless Debian Chromium driven by Playwright).

A digit is drawn on the sketchpad with mouse strokes, submitted, and the label must show it — at a
desktop size and at a phone size, where the canvas and the button must also fit the screen; two digits drawn
side by side must get no digit but a pointer to the Number tab, where a number drawn the same way must be read
whole. Files of written numbers are uploaded to the Batch tab, and its table must show each number.
Set ``HDR_SCREENSHOT_DIR=docs`` to (re)write the README screenshots while the tests run.
"""
from __future__ import annotations

import json
import math
import os
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app_server import APP, running_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)"),
    pytest.mark.skipif(not APP.exists(), reason="app.py is missing"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, points: int = 10):
    """Points of an elliptic arc in the unit square (y grows downwards, angles in degrees)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in (start_deg + (end_deg - start_deg) * i / (points - 1) for i in range(points))]


# How a person draws each digit: strokes (lists of points) in a unit square, y downwards.
STROKES = {
    0: [arc(0.5, 0.5, 0.3, 0.42, -90, 270, 16)],
    1: [[(0.56, 0.08), (0.46, 0.92)]],
    2: [arc(0.5, 0.3, 0.27, 0.22, 190, 380) + [(0.15, 0.9), (0.85, 0.9)]],
    3: [arc(0.47, 0.29, 0.25, 0.21, -160, 90) + arc(0.47, 0.72, 0.28, 0.22, -90, 160)],
    4: [[(0.58, 0.08), (0.15, 0.62), (0.85, 0.62)], [(0.65, 0.3), (0.65, 0.95)]],
    5: [[(0.78, 0.1), (0.3, 0.1), (0.28, 0.46)] + arc(0.47, 0.66, 0.28, 0.25, -130, 150)],
    6: [[(0.68, 0.08), (0.4, 0.35), (0.27, 0.62)] + arc(0.5, 0.7, 0.23, 0.2, 180, -180, 16)],
    7: [[(0.15, 0.12), (0.85, 0.12), (0.4, 0.92)]],
    8: [arc(0.5, 0.29, 0.2, 0.2, 90, 450, 14) + arc(0.5, 0.71, 0.24, 0.22, -90, 270, 14)],
    9: [arc(0.5, 0.3, 0.22, 0.2, 0, -360, 14) + [(0.72, 0.3), (0.66, 0.92)]],
}


def drawing_area(page, app_url: str, sketchpad: str = "sketch") -> tuple[float, float, float]:
    """Centre x, y and shorter side (page pixels) of the drawable area of the sketchpad whose elem_id is
    ``sketchpad`` (the Draw tab's square one by default; the Number tab's is wider than tall).

    The editor shows a ``canvas_size`` image, centred in its canvas element at the zoom it displays.
    """
    with urllib.request.urlopen(f"{app_url}/config") as response:
        config = json.load(response)
    sketch = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == sketchpad)
    canvas_width, canvas_height = sketch["props"].get("canvas_size") or (800, 800)
    box = page.locator(f"#{sketchpad} canvas").first.bounding_box()
    zoom_texts = page.locator(f"#{sketchpad}").get_by_text(re.compile(r"^\s*\d+%\s*$")).all_inner_texts()
    zoom = int(zoom_texts[0].strip(" %")) / 100 if zoom_texts else min(box["width"] / canvas_width,
                                                                        box["height"] / canvas_height)
    side = min(canvas_width * zoom, canvas_height * zoom, box["width"], box["height"])
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, side


def draw_digit(page, app_url: str, digit: int, width: float = 0.75, shift: float = 0.0,
               sketchpad: str = "sketch") -> None:
    """Select the brush and draw ``digit`` with mouse strokes, ``width`` of the drawing area's shorter side wide and
    tall (the middle 75% by default), its centre ``shift`` times that side right of the area's centre."""
    brush = page.locator(f"#{sketchpad} button[aria-label='Brush']")
    if brush.count():
        brush.click()
    cx, cy, side = drawing_area(page, app_url, sketchpad)
    size = width * side
    cx += shift * side
    for stroke in STROKES[digit]:
        points = [(cx + (x - 0.5) * size, cy + (y - 0.5) * size) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def assert_recognised(page, digit: int) -> None:
    """Press the sketch's submit button; the label's headline must become ``digit`` within a minute.

    (The label may first show answers for the drawing in progress; the submitted drawing's answer
    replaces them.)
    """
    page.locator("#sketch-submit").click()
    headline = page.locator("#label [data-testid='label-output-value']")
    sync_api.expect(headline, f"drew a {digit}").to_have_text(str(digit), timeout=60_000)


def save_screenshot(page, name: str) -> None:
    """Write a README screenshot when ``HDR_SCREENSHOT_DIR`` is set."""
    folder = os.environ.get("HDR_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


@pytest.fixture(scope="module")
def app_url():
    with running_app() as app:
        yield app.url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_app(browser, app_url: str, **context_options):
    """A fresh page with the app loaded and the sketchpad ready."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(60_000)  # generous: the CPU may be shared with other work
    page = context.new_page()
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#sketch canvas").first.wait_for(state="visible")
    return page


@pytest.mark.parametrize("digit", sorted(STROKES))
def test_a_digit_drawn_with_the_mouse_is_recognised(browser, app_url, digit):
    page = open_app(browser, app_url, viewport=DESKTOP)
    draw_digit(page, app_url, digit)
    assert_recognised(page, digit)
    if digit == 7:
        save_screenshot(page, "screenshot.png")
    page.context.close()


def test_two_digits_drawn_side_by_side_get_no_digit_but_a_pointer_to_the_number_tab(browser, app_url):
    page = open_app(browser, app_url, viewport=DESKTOP)
    draw_digit(page, app_url, 4, width=0.4, shift=-0.22)
    draw_digit(page, app_url, 7, width=0.4, shift=0.22)
    page.locator("#sketch-submit").click()
    sync_api.expect(page.locator("#sketch-status")).to_contain_text("several digits", timeout=60_000)
    sync_api.expect(page.locator("#sketch-status")).to_contain_text("Number tab")
    sync_api.expect(page.locator("#label")).to_contain_text("Not sure")
    page.context.close()


def test_a_number_drawn_with_the_mouse_in_the_number_tab_is_read_whole(browser, app_url):
    page = open_app(browser, app_url, viewport=DESKTOP)
    page.get_by_role("tab", name="Number").click()
    page.locator("#number-sketch canvas").first.wait_for(state="visible")
    for digit, shift in zip((4, 0, 7), (-0.9, 0.0, 0.9)):
        draw_digit(page, app_url, digit, width=0.7, shift=shift, sketchpad="number-sketch")
    page.locator("#number-sketch-submit").click()
    sync_api.expect(page.locator("#number-text h2")).to_have_text("407", timeout=60_000)
    digits = page.locator("#number-digits")
    for position, digit in enumerate("407", start=1):  # one row per digit: its position, then the digit read
        sync_api.expect(digits).to_contain_text(re.compile(rf"\b{position}\s+{digit}\s"))
    page.context.close()


def test_on_a_phone_the_sketchpad_fits_and_a_drawn_digit_is_recognised(browser, app_url):
    page = open_app(browser, app_url, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    for selector in ("#sketch canvas", "#sketch-submit"):
        element = page.locator(selector).first
        element.scroll_into_view_if_needed()
        assert element.is_visible(), f"{selector} is not visible on a {PHONE['width']} px wide screen"
        box = element.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, \
            f"{selector} spans x={box['x']:.0f}..{box['x'] + box['width']:.0f}, wider than the screen"
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= PHONE["width"], f"the page scrolls sideways: {page_width} px wide on a {PHONE['width']} px screen"

    page.locator("#sketch canvas").first.scroll_into_view_if_needed()
    draw_digit(page, app_url, 7)
    assert_recognised(page, 7)
    save_screenshot(page, "screenshot-phone.png")
    page.context.close()


def test_the_batch_tab_reads_the_whole_number_in_each_uploaded_file(browser, app_url, mnist_test, tmp_path):
    images, labels = mnist_test
    numbers = ["2026", "75"]
    paths = []
    for number in numbers:  # the first MNIST test image of each digit, side by side, dark ink on white
        ink = np.concatenate([np.pad(images[np.argmax(labels == int(c))], ((8, 8), (6, 6))) for c in number], axis=1)
        paths.append(str(tmp_path / f"written_{number}.png"))
        Image.fromarray(255 - ink).resize((ink.shape[1] * 3, ink.shape[0] * 3)).save(paths[-1])
    page = open_app(browser, app_url, viewport=DESKTOP)
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-files input[type=file]").set_input_files(paths)
    page.locator("#batch-mode").get_by_text("A whole number per image").click()
    page.locator("#batch-submit").click()
    sync_api.expect(page.locator("#batch-status")).to_contain_text("Read 2 of 2 files")
    table = page.locator("#batch-table")
    sync_api.expect(table).to_contain_text("number")  # the column header of number mode (not in the file names)
    for path, number in zip(paths, numbers):  # each file's row: its name, then the number read
        sync_api.expect(table).to_contain_text(re.compile(rf"{re.escape(Path(path).name)}\s+{number}\s"))
    page.context.close()
