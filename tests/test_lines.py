"""The line strip: what the line reader sees of a number, whatever its size, drift, lines and spacing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hdr.export import fit_peak_offset
from hdr.line_data import BROKEN_SHARE, SPACING_WEIGHTS, LineDataModule, random_style
from hdr.line_model import FRAME_WIDTH, STRIP_HEIGHT
from hdr.lines import STRIP_DIGIT_HEIGHT, line_strip
from hdr.reader import read_strips
from hdr.synthetic import SPACINGS, DigitPool, LineStyle, add_underline, render_line


@pytest.fixture(scope="module")
def pool(data_root) -> DigitPool:
    return DigitPool.from_mnist(data_root)


def ink_rows(pixels: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero(pixels.max(1) > 0.3)
    return int(rows[0]), int(rows[-1])


def test_digits_come_out_the_same_height_whatever_the_image_size(pool):
    heights = []
    for scale in (1.0, 4.0):
        ink, _ = render_line("4096", LineStyle(scale=scale, spacing="spaced"), pool, np.random.default_rng(0))
        strip = line_strip(ink)
        assert strip.pixels.shape[0] == STRIP_HEIGHT and strip.pixels.shape[1] % FRAME_WIDTH == 0
        top, bottom = ink_rows(strip.pixels)
        heights.append(bottom - top + 1)
    assert abs(heights[0] - heights[1]) <= 2
    assert STRIP_DIGIT_HEIGHT - 2 <= heights[0] <= STRIP_HEIGHT - 4  # about a digit high, with room around it


def test_touching_digits_keep_the_height_of_one_digit(pool):
    ink, _ = render_line("83518", LineStyle(spacing="overlapping", size_jitter=0.15), pool, np.random.default_rng(1))
    strip = line_strip(ink)
    assert abs(strip.line_height - 20) <= 4  # the run of touching ink is one component, taller than any digit


def test_baseline_drift_is_straightened(pool):
    style = LineStyle(scale=2.0, spacing="spaced", drift_slope=0.08)
    ink, boxes = render_line("1234567", style, pool, np.random.default_rng(2))
    bottoms = [box[3] for box in boxes]
    assert bottoms[-1] - bottoms[0] > 15  # the baseline climbs by about half a digit height
    strip = line_strip(ink)
    centres = []
    for box in boxes:  # each digit's vertical centre in the strip
        first = int((box[0] - strip.left) * strip.scale)
        last = int((box[2] - strip.left) * strip.scale)
        top, bottom = ink_rows(strip.pixels[:, first:last])
        centres.append((top + bottom) / 2)
    assert max(centres) - min(centres) <= 4


def test_underline_ruled_lines_and_specks_are_dropped(pool):
    rng = np.random.default_rng(3)
    ink, boxes = render_line("2718", LineStyle(scale=2.0), pool, rng)
    add_underline(ink, boxes, 40, rng)
    ink[boxes[0][1] - 30, :] = 1.0  # a ruled line across the whole image, above the digits
    ink[5:7, 5:7] = 1.0  # a speck
    strip = line_strip(ink)
    top, bottom = ink_rows(strip.pixels)
    assert bottom - top + 1 <= STRIP_HEIGHT - 4  # nothing left above or below the digits


def test_no_ink_gives_no_strip():
    assert line_strip(np.zeros((50, 80), np.float32)) is None


def test_training_numbers_follow_the_chosen_mix_of_spacings_and_broken_strokes():
    rng = np.random.default_rng(0)
    only_touching = [random_style(rng, spacing_weights=[0, 0, 0, 1, 0], broken_share=1.0) for _ in range(50)]
    assert {style.spacing for style in only_touching} == {"touching"}
    assert all(style.broken > 0 for style in only_touching)
    default = [random_style(rng) for _ in range(400)]
    assert {style.spacing for style in default} == set(SPACINGS)
    assert 0.15 < np.mean([style.broken > 0 for style in default]) < 0.35  # BROKEN_SHARE of them


def test_the_data_module_trains_on_its_mix_and_validates_on_the_usual_one(data_root):
    data = LineDataModule(data_root, download=False, train_numbers=8, val_numbers=8,
                          spacing_weights=[0, 0, 0, 0, 1], broken_share=0.0)
    data.setup("fit")
    assert (data.train_set.spacing_weights, data.train_set.broken_share) == ([0, 0, 0, 0, 1], 0.0)
    assert (data.val_set.spacing_weights, data.val_set.broken_share) == (SPACING_WEIGHTS, BROKEN_SHARE)


def test_training_numbers_made_into_images_are_read_back_as_at_inference(data_root, recognizer):
    """With ``image_share`` 1, every training number is a scan, photo or sketch image read back into a strip by the
    reader's own steps: the strips hold the labelled number (the shipped reader reads it), and no drawn digit
    positions are claimed for them (their ink map is not the one drawn)."""
    data = LineDataModule(data_root, download=False, train_numbers=12, val_numbers=8, image_share=1.0)
    data.setup("fit")
    numbers = [data.train_set.number(index) for index in range(12)]
    assert all(number.digit_columns is None for number in numbers)
    strips = [number.strip.pixels for number in numbers]
    read = ["".join(c.char for c in characters) for characters in read_strips(recognizer.line_reader, strips)]
    right = sum(text == number.text.replace(" ", "") for text, number in zip(read, numbers))
    assert right >= 10, list(zip(read, [number.text for number in numbers]))


def test_validation_numbers_can_be_read_back_from_images_too(data_root, recognizer):
    """With ``val_image_share`` 0.5, about half of the validation numbers are images read back into strips, the same
    ones every epoch; the others are the very numbers drawn without it, and the peak offset is measured on those."""
    plain = LineDataModule(data_root, download=False, val_numbers=40)
    mixed = LineDataModule(data_root, download=False, val_numbers=40, val_image_share=0.5)
    plain.setup("fit")
    mixed.setup("fit")
    numbers = [mixed.val_set.number(index) for index in range(40)]
    read_back = [number.digit_columns is None for number in numbers]
    assert 10 <= sum(read_back) <= 30
    assert [number.text for number in numbers] == [mixed.val_set.number(index).text for index in range(40)]
    for index, (number, back) in enumerate(zip(numbers, read_back)):
        if not back:
            assert np.array_equal(number.strip.pixels, plain.val_set.number(index).strip.pixels)
    offset = fit_peak_offset(recognizer.line_reader, mixed.val_set, count=40)
    assert offset == pytest.approx(recognizer.line_reader.peak_offset, abs=0.15)


def test_the_peak_offset_is_measured_where_the_reader_fires(data_root, recognizer):
    """The shipped reader's peaks fall left of each digit's centre; measured again on fresh validation numbers, the
    offset is the one in its config, and a reader whose strips are shifted right by a quarter digit height is
    measured a quarter height further right."""
    data = LineDataModule(data_root, download=False, val_numbers=60)
    data.setup("fit")
    offset = fit_peak_offset(recognizer.line_reader, data.val_set, count=60)
    assert offset == pytest.approx(recognizer.line_reader.peak_offset, abs=0.1)
    assert offset < -0.2

    shift = STRIP_DIGIT_HEIGHT // 4  # strip columns; the strip's digits are STRIP_DIGIT_HEIGHT high

    class ShiftedStrips(torch.nn.Module):
        def forward(self, strips):
            padded = torch.nn.functional.pad(strips, (shift, 0))[..., : strips.shape[-1]]
            return recognizer.line_reader(padded)

    shifted = fit_peak_offset(ShiftedStrips(), data.val_set, count=60)
    assert shifted - offset == pytest.approx(0.25, abs=0.08)
