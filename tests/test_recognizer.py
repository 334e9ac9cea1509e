"""The Recognizer on the shipped model: accuracy, input types, batches, confidences, bad input."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from bench.non_digits import render_shape
from hdr import BlankImageError, InvalidImageError, Recognizer
from hdr.hub import SHIPPED_LINE_READER, SHIPPED_MODEL


def paper_digit(digit_28: np.ndarray, size: int = 280) -> np.ndarray:
    """An MNIST digit as dark ink on white paper, upscaled like a scan: uint8 H×W."""
    big = Image.fromarray(digit_28).resize((size, size), Image.BICUBIC)
    return 255 - np.asarray(big)


def test_shipped_model_reaches_the_mnist_test_accuracy_its_card_states(recognizer, mnist_test):
    images, labels = mnist_test
    inputs = list(images.astype(np.float32) / 255)
    predictions = [p for start in range(0, len(inputs), 1000) for p in recognizer.classify(inputs[start:start + 1000])]
    accuracy = np.mean([p.digit == label for p, label in zip(predictions, labels)])
    stated = json.loads((SHIPPED_MODEL / "metrics.json").read_text())["mnist_test_accuracy"]
    assert f"| mnist_test_accuracy | {stated} |" in (SHIPPED_MODEL / "README.md").read_text()
    assert accuracy == pytest.approx(stated, abs=5e-5) and accuracy >= 0.996, f"MNIST test accuracy {accuracy:.4f}"


def test_every_input_type_gives_the_same_answer(recognizer, mnist_test, tmp_path):
    images, labels = mnist_test
    gray = paper_digit(images[0])
    path = tmp_path / "digit.png"
    Image.fromarray(gray).save(path)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgba = np.dstack([rgb, np.full_like(gray, 255)])
    sources = {
        "str path": str(path), "Path": path, "bytes": path.read_bytes(), "PIL": Image.open(path),
        "H×W": gray, "H×W×3": rgb, "H×W×4": rgba,
    }
    answers = {name: recognizer.predict(source) for name, source in sources.items()}
    for name, prediction in answers.items():
        assert prediction.digit == labels[0], name
        assert prediction.probabilities == pytest.approx(answers["Path"].probabilities, abs=1e-5), name


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_a_16_bit_file_is_read_at_the_bit_depth_of_its_values(recognizer, mnist_test, tmp_path, bits):
    """A 16-bit PNG whose values use 8, 12 or 16 bits (a camera's 12-bit data, or an 8-bit array saved as uint16) reads
    as the 8-bit image does; before, the 8-bit values were taken for a black page ("No ink found")."""
    images, labels = mnist_test
    gray = paper_digit(images[0])
    path = tmp_path / "digit16.png"
    Image.fromarray((gray.astype(np.uint32) * (2**bits - 1) // 255).astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    prediction = recognizer.predict(path)
    assert prediction.digit == labels[0] and not prediction.unsure
    assert prediction.probabilities == pytest.approx(recognizer.predict(gray).probabilities, abs=1e-3)


def test_a_float_image_of_0_to_1_is_read_even_where_resampling_overshot(recognizer, mnist_test):
    """A float TIFF holding 0..1, enlarged with bicubic resampling so that some values exceed 1: read as the 8-bit
    image is (before, its values were taken for 0..255 and the page for black)."""
    images, labels = mnist_test
    gray = paper_digit(images[0])
    buffer = io.BytesIO()
    floats = Image.fromarray(gray.astype(np.float32) / 255, "F").resize((gray.shape[1] * 2, gray.shape[0] * 2),
                                                                        Image.Resampling.BICUBIC)
    assert np.asarray(floats).max() > 1
    floats.save(buffer, "TIFF")
    prediction = recognizer.predict(buffer.getvalue())
    assert prediction.digit == labels[0] and not prediction.unsure


def test_prediction_fields_are_consistent(recognizer, mnist_test):
    images, labels = mnist_test
    prediction = recognizer.predict(paper_digit(images[1]))
    assert prediction.digit == labels[1]
    assert len(prediction.probabilities) == 10 and sum(prediction.probabilities) == pytest.approx(1, abs=1e-4)
    assert prediction.confidence == max(prediction.probabilities)
    assert prediction.top(3)[0] == (prediction.digit, prediction.confidence)
    assert prediction.model_input.shape == (28, 28)
    assert not prediction.unsure and not prediction.several_digits
    assert set(prediction.to_dict()) == {"digit", "confidence", "probabilities", "unsure", "several_digits"}


def test_batch_matches_single_predictions(recognizer, mnist_test):
    images, labels = mnist_test
    sources = [paper_digit(image, size) for image, size in zip(images[:12], [60, 280, 1000] * 4)]
    batch = recognizer.predict_batch(sources)
    assert [p.digit for p in batch] == list(labels[:12])
    for source, prediction in zip(sources, batch):
        assert recognizer.predict(source).probabilities == pytest.approx(prediction.probabilities, abs=1e-5)


def test_noise_is_never_read_as_a_confident_digit(recognizer):
    rng = np.random.default_rng(0)
    for _ in range(5):
        noise = ((rng.random((200, 200)) > 0.6) * 255).astype(np.uint8)
        try:
            assert recognizer.predict(noise).unsure
        except BlankImageError:
            pass  # noise without strokes: reported as holding no ink


def test_unsure_means_below_the_models_calibrated_thresholds(recognizer, mnist_test):
    images, _ = mnist_test
    # Half-erased digits give a spread of confidences, some of them low.
    inputs = [np.where(np.arange(28)[None, :] < cut, image / 255, 0).astype(np.float32)
              for image, cut in zip(images[:200], np.tile(np.arange(10, 20), 20))]
    predictions = recognizer.classify(inputs)
    assert any(p.unsure for p in predictions) and not all(p.unsure for p in predictions)
    model = recognizer.model
    with torch.inference_mode():
        evidence = model.evidence(model(torch.from_numpy(np.stack(inputs)).unsqueeze(1))).tolist()
    for prediction, strength in zip(predictions, evidence):
        assert prediction.unsure == (prediction.confidence < model.min_confidence or strength < model.min_evidence)


def test_shapes_that_are_no_digit_are_flagged_far_more_often_than_digits(recognizer, mnist_test):
    # Scribbles, letters and noise (bench/bench_realistic.py measures the flagged rates on more kinds of non-digits).
    shapes = [render_shape(kind, seed) for kind in ("scribble", "letter", "noise") for seed in range(20)]
    flagged = []
    for shape in shapes:
        try:
            flagged.append(recognizer.predict(shape).unsure)
        except BlankImageError:
            flagged.append(True)
    images, _ = mnist_test
    digits = recognizer.classify(list(images[:1000].astype(np.float32) / 255))
    assert np.mean(flagged) >= 0.35
    assert np.mean([p.unsure for p in digits]) <= 0.02


def line_drawing(*lines: tuple[float, float, float, float]) -> Image.Image:
    """Pen lines (x0, y0, x1, y1) on white paper."""
    paper = Image.new("L", (400, 400), 250)
    for line in lines:
        ImageDraw.Draw(paper).line(line, fill=20, width=14)
    return paper


@pytest.mark.parametrize("name, drawing", [
    ("dash", line_drawing((50, 200, 350, 200))),
    ("tilted line", line_drawing((50, 230, 350, 180))),
    ("equals sign", line_drawing((60, 170, 340, 175), (60, 230, 340, 235))),
])
def test_a_dash_or_a_line_is_not_read_as_a_digit(recognizer, name, drawing):
    prediction = recognizer.predict(drawing)
    assert prediction.unsure and not prediction.several_digits, name


def test_the_widest_handwritten_digits_are_still_read(recognizer, mnist_train):
    images, labels = mnist_train
    widest = [59734, 42491, 42503, 42337, 56939]  # ink 2.5 times wider than tall, the widest of MNIST's 70,000
    predictions = recognizer.predict_batch([paper_digit(images[index]) for index in widest])
    assert [p.digit for p in predictions] == [labels[index] for index in widest]
    assert not any(p.unsure for p in predictions)


@pytest.mark.parametrize("source, message", [
    (b"", "empty"),
    (b"this is not an image at all", "image"),
    (np.zeros((0, 0), np.uint8), "empty"),
])
def test_bad_input_gives_a_clear_error(recognizer, source, message):
    with pytest.raises(InvalidImageError, match=f"(?i){message}"):
        recognizer.predict(source)


def test_truncated_png_gives_a_clear_error(recognizer, mnist_test):
    buffer = io.BytesIO()
    Image.fromarray(paper_digit(mnist_test[0][0])).save(buffer, format="PNG")
    with pytest.raises(InvalidImageError):
        recognizer.predict(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def test_blank_page_is_reported_not_classified(recognizer):
    with pytest.raises(BlankImageError):
        recognizer.predict(np.full((300, 300), 255, np.uint8))
    with pytest.raises(BlankImageError):
        recognizer.predict(np.zeros((300, 300, 4), np.uint8))  # untouched transparent canvas


def test_loads_a_local_model_folder(tmp_path, recognizer):
    recognizer.model.save_pretrained(tmp_path)
    copy = Recognizer.from_pretrained(str(tmp_path))
    assert copy.source.kind == "local"
    sample = [np.eye(28, dtype=np.float32)]
    assert copy.classify(sample)[0].probabilities == pytest.approx(recognizer.classify(sample)[0].probabilities)


def test_line_reader_comes_from_the_shipped_folder_or_a_given_one(recognizer):
    shipped = recognizer.line_reader_source
    assert (shipped.kind, shipped.path) == ("shipped", str(SHIPPED_LINE_READER))
    assert shipped.describe() == "shipped model (checkpoints/hdr-lines)"

    copy = Recognizer.from_pretrained(line_reader=SHIPPED_LINE_READER)  # a Path, as bench/bench_read.py passes it
    assert copy.line_reader_source.kind == "local" and copy.source.kind == "shipped"
    state = recognizer.line_reader.state_dict()
    assert all(torch.equal(value, state[name]) for name, value in copy.line_reader.state_dict().items())
