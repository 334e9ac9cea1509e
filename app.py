"""The hdr web app: draw or upload handwritten digits and see what the model reads, and why.

    python app.py                                   # shipped model on http://127.0.0.1:7860
    python app.py --model user/hdr-mnist --revision v2 --host 0.0.0.0 --port 8080 --auth me:secret
    python app.py --line-reader user/hdr-lines --line-reader-revision v1   # the line reader from a hub too
    python app.py --share                           # also ask Gradio for a public link

Every option also has an environment variable (HDR_MODEL, HDR_REVISION, HDR_LINE_READER, HDR_LINE_READER_REVISION,
HDR_AUTH, HDR_FEEDBACK_DIR, GRADIO_SERVER_NAME, GRADIO_SERVER_PORT, HDR_WORKERS). API endpoints for ``gradio_client``:
/predict, /predict_sketch, /predict_batch, /read, /read_batch, /feedback, /model_info; and ``POST /api/v1/predict``,
one plain HTTP request per image, for high-volume clients (see README, section "App").
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls; must precede the import
# Preprocessing solves many tiny least-squares fits; multi-threaded OpenBLAS made each ~7× slower (bench/bench_load.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The model's batches are small and the cores busy with requests: extra torch threads only wait for each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import binascii  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from concurrent.futures.process import BrokenProcessPool  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
from gradio.components.image_editor import EditorData  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from starlette.datastructures import UploadFile  # noqa: E402
from starlette.formparsers import MultiPartException, MultiPartParser  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from hdr import BlankImageError, InvalidImageError, Prediction, Recognizer  # noqa: E402
from hdr.feedback import FeedbackStore  # noqa: E402
from hdr.hub import ModelSource  # noqa: E402
from hdr.loading import load_image  # noqa: E402
from hdr.preprocess import Preprocessed, preprocess  # noqa: E402
from hdr.reader import Reading, draw_reading  # noqa: E402
from hdr.saliency import integrated_gradients, overlay, upscale  # noqa: E402
from hdr.serving import MicroBatcher, worker_pool  # noqa: E402

log = logging.getLogger("hdr.app")

MAX_FILE_BYTES = 20 * 2**20  # uploads, and request bodies of the REST route
MAX_BATCH_SIZE = 16  # requests of concurrent users that share one model call (Gradio's queue)
REST_PATH = "/api/v1/predict"
REST_BATCH_SIZE = 64  # requests of the REST route that share one model call...
REST_BATCH_WAIT = 0.005  # ...waiting at most this long (s) for each other
MAX_BATCH_FILES = 500  # files read per batch request; the rest are reported as skipped
SKIPPED = f"Skipped: at most {MAX_BATCH_FILES} files per batch."
CANVAS_SIZE = (360, 360)
NUMBER_CANVAS_SIZE = (720, 240)
BRUSH_RADIUS = 12  # px on the canvas; a digit drawn across most of it gets MNIST-like stroke widths
PREVIEW_SIZE = 480
DRAW_FIRST = "Please draw a digit first."
UPLOAD_FIRST = "Please upload an image first."
SMALL_IMAGE = dict(interactive=False, format="png", height=270, min_width=140)  # 28×28 inputs shown 224 px
BATCH_COLUMNS = ["file", "digit", "confidence", "unsure", "message"]
NUMBER_BATCH_COLUMNS = ["file", "number", "confidence", "unsure", "message"]
ONE_DIGIT, WHOLE_NUMBER = "One digit per image", "A whole number per image"  # what the Batch tab reads
DIGIT_COLUMNS = ["position", "digit", "confidence", "alternatives", "box (left, top, right, bottom)"]


@dataclass
class Analysis:
    """What the app found in one image: a prediction, or a message saying why there is none."""

    message: str
    prediction: Prediction | None = None
    image: Image.Image | None = None  # the image as loaded (for the preview and for feedback)
    prepared: Preprocessed | None = None  # the model input and ink box, to be classified
    status: int = 400  # HTTP status of a REST answer without prediction: 400 bad input, 422 no ink, 500 our failure

    def to_dict(self) -> dict:
        """JSON-friendly answer of the API: digit, confidence, probabilities, unsure, several_digits, message."""
        if self.prediction is None:
            return {"digit": None, "confidence": None, "probabilities": None, "unsure": True,
                    "several_digits": False, "message": self.message}
        return {**self.prediction.to_dict(), "message": self.message}


def describe(prediction: Prediction) -> str:
    """A sentence for people: the digit and how sure the model is, or why it is not sure."""
    if not prediction.unsure:
        article = "an" if prediction.digit == 8 else "a"
        return f"Looks like {article} {prediction.digit} ({prediction.confidence:.1%} sure)."
    guesses = ", ".join(f"{digit} ({probability:.0%})" for digit, probability in prediction.top(3))
    if prediction.several_digits:
        return ("This looks like several digits side by side, so there is no answer for one digit "
                f"(best guesses, read as one: {guesses}). To read a whole number, use the Number tab (API: /read).")
    return ("This does not look like a clear digit, so there is no answer. "
            f"Best guesses: {guesses}. Try one digit, large and centred.")


def prepare(source, missing: str = UPLOAD_FIRST, blank: str | None = None) -> Analysis:
    """Load and preprocess one source for :meth:`DigitApp.classify`: an Analysis holding the model input, or the
    message saying why there is none.

    ``source`` is a path, bytes, a PIL image, an Analysis (an early error, returned as is) or None (no input:
    ``missing`` is the message). ``blank`` (if given) replaces the preprocessing's message for an image without ink.
    """
    if isinstance(source, Analysis):
        return source
    if source is None:
        return Analysis(missing)
    try:
        image = load_image(source)
        prepared = preprocess(image)
    except BlankImageError as error:
        return Analysis(blank or str(error), status=422)
    except InvalidImageError as error:
        return Analysis(str(error))
    except Exception:  # a bug or an unforeseen file must not fail the whole batch
        log.exception("could not read %.200r", source)
        return Analysis("Sorry, this image could not be read.", status=500)
    return Analysis("", image=image, prepared=prepared)


def decode_sketch(payload: dict | None, sketchpad: gr.Sketchpad) -> Image.Image | Analysis | None:
    """The drawing in a raw sketchpad payload, or an Analysis explaining why it cannot be read.

    Events receive sketchpad values unprocessed (``preprocess=False``) and decode them here, one by
    one, so that a bad payload spoils only its own answer in a batch. A payload with an ``id`` comes
    from the browser, which uploaded the strokes to ``sketchpad`` ahead of the event; layer files
    (API clients) are read with the same checks as uploaded images.
    """
    if payload is None:
        return None
    try:
        if payload.get("id"):
            layers = sketchpad.preprocess(EditorData.model_validate(payload))["layers"]
        else:
            layers = [load_image(layer["path"]) for layer in payload.get("layers") or [] if layer]
    except InvalidImageError as error:
        return Analysis(f"The drawing could not be read: {error}")
    except Exception:  # a malformed payload must not fail the other requests of the batch
        log.exception("could not decode a sketchpad payload")
        return Analysis("The drawing could not be read; please draw again.")
    return flatten_layers(layers)


def flatten_layers(layers: list[Image.Image]) -> Image.Image | None:
    """The drawn layers of a sketchpad stacked into one RGBA image; None when nothing was drawn.

    The strokes live in the alpha channel of the layers; the background and composite are ignored
    because their colour depends on the browser's light or dark theme.
    """
    if not layers:
        return None
    canvas = Image.new("RGBA", layers[0].size, (0, 0, 0, 0))
    for layer in layers:
        layer = layer.convert("RGBA")
        if layer.size != canvas.size:
            layer = layer.resize(canvas.size)
        canvas.alpha_composite(layer)
    return canvas


class DigitApp:
    """The app's behaviour, shared by the UI and the API: reading images, explaining, feedback."""

    def __init__(self, recognizer: Recognizer, feedback: FeedbackStore):
        self.recognizer = recognizer
        self.feedback = feedback

    # ----- core -------------------------------------------------------------------------------
    def analyse(self, sources: list, missing: str = UPLOAD_FIRST, blank: str | None = None) -> list[Analysis]:
        """Read one digit from each source (see :func:`prepare` for the sources and messages), in one model call.

        Errors stay with their own item: one bad file never spoils the answers of the others,
        which matters because requests of different users are batched together.
        """
        return self.classify([prepare(source, missing, blank) for source in sources])

    def classify(self, analyses: list[Analysis]) -> list[Analysis]:
        """Fill in the prediction of each prepared analysis (one model call for all); returns ``analyses``."""
        ready = [analysis for analysis in analyses if analysis.prepared is not None]
        for analysis, prediction in zip(ready, self.recognizer.classify_prepared([a.prepared for a in ready])):
            analysis.prediction = prediction
            analysis.message = describe(prediction)
        return analyses

    def read_numbers(self, sources: list,
                     missing: str = UPLOAD_FIRST) -> list[tuple[Image.Image | None, Reading | str]]:
        """Read a whole number from each source: (image as loaded, Reading) or (image or None, message).

        All readable images go through the reader together; if one of them makes it fail (say it
        holds no ink), they are read one by one so each keeps its own answer.
        """
        loaded: list[Image.Image | str] = []
        for source in sources:
            if isinstance(source, Analysis):
                loaded.append(source.message)
            elif source is None:
                loaded.append(missing)
            else:
                try:
                    loaded.append(load_image(source))
                except InvalidImageError as error:
                    loaded.append(str(error))
                except Exception:  # an unforeseen file must not fail the whole batch
                    log.exception("could not load %r", source)
                    loaded.append("Sorry, this image could not be read.")
        images = [item for item in loaded if isinstance(item, Image.Image)]
        readings = iter([reading_or_message(result) for result in self.recognizer.read_each(images)])
        return [(item, next(readings)) if isinstance(item, Image.Image) else (None, item) for item in loaded]

    def analyse_sketches(self, payloads: list[dict | None], sketchpad: gr.Sketchpad) -> list[Analysis]:
        """:meth:`analyse` for raw sketchpad payloads."""
        sources = [decode_sketch(payload, sketchpad) for payload in payloads]
        return self.analyse(sources, missing=DRAW_FIRST, blank=DRAW_FIRST)

    def explain(self, analyses: list[Analysis]) -> tuple[list, list]:
        """The upscaled 28×28 inputs and their saliency overlays (None where there is no prediction)."""
        done = [analysis.prediction for analysis in analyses if analysis.prediction is not None]
        maps = iter(integrated_gradients(self.recognizer.model, [p.model_input for p in done],
                                         [p.digit for p in done]))
        seen, heat = [], []
        for analysis in analyses:
            prediction = analysis.prediction
            seen.append(upscale(prediction.model_input) if prediction else None)
            heat.append(overlay(prediction.model_input, next(maps)) if prediction else None)
        return seen, heat

    # ----- API endpoints (JSON-friendly) ---------------------------------------------------------
    # Gradio batches concurrent requests of the single-image endpoints: each parameter then holds a
    # list with one item per request. Parameter names are the keyword names of the API.
    def api_predict(self, image: list[str | None]) -> tuple[list[dict]]:
        """Batched /predict: one image file per request → digit, confidence, probabilities, unsure, message."""
        return ([analysis.to_dict() for analysis in self.analyse(image)],)

    def api_predict_sketch(self, sketch: list[dict | None], sketchpad: gr.Sketchpad) -> tuple[list[dict]]:
        """Batched /predict_sketch: one sketchpad value per request → the same dict as /predict."""
        analyses = self.analyse_sketches(sketch, sketchpad)
        return ([analysis.to_dict() for analysis in analyses],)

    def api_predict_batch(self, images: list[str] | None) -> list[dict]:
        """/predict_batch: many files → one row per file (file, digit, confidence, unsure, message)."""
        paths = list(images or [])
        analyses = self.analyse(paths[:MAX_BATCH_FILES])
        analyses += [Analysis(SKIPPED)] * len(paths[MAX_BATCH_FILES:])
        return [{"file": Path(path).name, **analysis.to_dict()} for path, analysis in zip(paths, analyses)]

    def api_read(self, image: list[str | None]) -> tuple[list[dict]]:
        """Batched /read: one image of a whole number per request → text, digits with boxes, message."""
        return ([reading_dict(reading) for _, reading in self.read_numbers(image)],)

    def api_read_batch(self, images: list[str] | None) -> list[dict]:
        """/read_batch: many files, a whole number in each → one row per file (file and the /read answer)."""
        paths = list(images or [])
        kept, readings = paths[:MAX_BATCH_FILES], []
        for first in range(0, len(kept), MAX_BATCH_SIZE):  # in groups: a blank image slows only its own group
            readings += [reading for _, reading in self.read_numbers(kept[first : first + MAX_BATCH_SIZE])]
        readings += [SKIPPED] * len(paths[MAX_BATCH_FILES:])
        return [{"file": Path(path).name, **reading_dict(reading)} for path, reading in zip(paths, readings)]

    def api_feedback(self, image: str | None, correct_digit: float | None) -> dict:
        """/feedback: an image and its right digit → stored in the feedback folder."""
        saved, message = self.save_feedback(self.analyse([image])[0], correct_digit, "api")
        return {"saved": saved, "message": message}

    def model_info(self) -> dict:
        """/model_info: which digit model answers (kind, repo_id, revision, commit, folder, note, description),
        and the same for the line reader that reads whole numbers under ``line_reader``."""
        return {**source_info(self.recognizer.source), "line_reader": source_info(self.recognizer.line_reader_source)}

    # ----- UI handlers ---------------------------------------------------------------------------
    def ui_draw(self, payloads: list[dict | None], sketchpad: gr.Sketchpad) -> tuple[list, list, list, list]:
        """Batched Draw tab: label, status, what the model saw, saliency."""
        analyses = self.analyse_sketches(payloads, sketchpad)
        seen, heat = self.explain(analyses)
        return [label_value(a) for a in analyses], [a.message for a in analyses], seen, heat

    def ui_upload(self, paths: list[str | None]) -> tuple[list, list, list, list, list]:
        """Batched Upload tab: preview with the ink box, label, status, what the model saw, saliency."""
        analyses = self.analyse(paths)
        seen, heat = self.explain(analyses)
        return ([preview(a) for a in analyses], [label_value(a) for a in analyses],
                [a.message for a in analyses], seen, heat)

    def ui_number_sketch(self, payloads: list[dict | None], sketchpad: gr.Sketchpad) -> tuple[list, list, list]:
        """Batched Number tab, drawn: the text, the image with boxes, the table of digits."""
        sources = [decode_sketch(payload, sketchpad) for payload in payloads]
        return number_outputs(self.read_numbers(sources, missing=DRAW_FIRST))

    def ui_number_upload(self, paths: list[str | None]) -> tuple[list, list, list]:
        """Batched Number tab, uploaded: the text, the image with boxes, the table of digits."""
        return number_outputs(self.read_numbers(paths))

    def ui_batch(self, paths: list[str] | None, mode: str = ONE_DIGIT):
        """Batch tab: the table and the CSV + JSON downloads (the JSON holds the whole API answers: the
        probabilities of each digit, or the boxes and alternatives of each digit of a number)."""
        numbers = mode == WHOLE_NUMBER
        rows = self.api_read_batch(paths) if numbers else self.api_predict_batch(paths)
        if not rows:
            return None, None, UPLOAD_FIRST
        key, columns = ("text", NUMBER_BATCH_COLUMNS) if numbers else ("digit", BATCH_COLUMNS)
        table = [[row["file"], row[key], None if row[key] is None else round(row["confidence"], 4),
                  None if row[key] is None else row["unsure"], row["message"]] for row in rows]
        folder = Path(tempfile.mkdtemp(prefix="hdr-batch-"))
        with open(folder / "predictions.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([columns, *table])
        (folder / "predictions.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
        read = sum(row[key] is not None for row in rows)
        sure = sum(row[key] is not None and not row["unsure"] for row in rows)
        summary = f"Read {read} of {len(rows)} files; {sure} with a confident answer."
        downloads = [str(folder / "predictions.csv"), str(folder / "predictions.json")]
        return {"data": table, "headers": columns}, downloads, summary

    def ui_feedback_draw(self, payload: dict | None, correct_digit: str | None, sketchpad: gr.Sketchpad) -> str:
        analysis = self.analyse_sketches([payload], sketchpad)[0]
        return self.save_feedback(analysis, correct_digit, "draw")[1]

    def ui_feedback_upload(self, path: str | None, correct_digit: str | None) -> str:
        return self.save_feedback(self.analyse([path])[0], correct_digit, "upload")[1]

    def save_feedback(self, analysis: Analysis, correct_digit, mode: str) -> tuple[bool, str]:
        """Store a correction; return whether it was saved and what happened, for people."""
        if analysis.prediction is None:
            return False, f"Nothing to correct yet: {analysis.message}"
        if analysis.prediction.several_digits:  # its 28×28 input squeezes several digits: no use for fine-tuning
            return False, "This looks like several digits; corrections are kept for images of one digit."
        try:
            digit = int(correct_digit)
        except (TypeError, ValueError):
            digit = -1
        if digit not in range(10):
            return False, "Pick the right digit (0–9) first."
        sample = self.feedback.save(analysis.prediction.model_input, digit, analysis.prediction.to_dict(),
                                    original=analysis.image,
                                    extra={"mode": mode, "model": self.recognizer.source.to_dict()})
        return True, f"Thanks! Saved as digit {digit} ({sample.name}); it will be used when the model is fine-tuned."


def source_info(source: ModelSource) -> dict:
    """A model's source for /model_info, its folder under ``folder``: gradio_client would take any dict with a
    "path" key for a file to download."""
    info = source.to_dict()
    info["folder"] = info.pop("path")
    return info


def label_value(analysis: Analysis) -> dict | str | None:
    """gr.Label value: calibrated probabilities when sure, 'Not sure' when unsure, empty on errors."""
    prediction = analysis.prediction
    if prediction is None:
        return None
    if prediction.unsure:
        return "Not sure"
    return {str(digit): probability for digit, probability in enumerate(prediction.probabilities)}


def preview(analysis: Analysis) -> Image.Image | None:
    """The uploaded image (on white where transparent), shrunk for display, with a box around the ink read."""
    if analysis.image is None:
        return None
    image = analysis.image.convert("RGBA")
    image.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")
    if analysis.prepared is not None:
        scale = image.width / analysis.image.width
        box = [round(value * scale) for value in analysis.prepared.ink_box]
        ImageDraw.Draw(image).rectangle(box, outline=(230, 30, 30), width=max(2, round(image.width / 150)))
    return image


def reading_or_message(result: Reading | Exception) -> Reading | str:
    """A reading as it is; a failure as the message shown to the user (unforeseen ones are logged)."""
    if isinstance(result, Reading):
        return result
    if isinstance(result, InvalidImageError):
        return str(result)
    log.error("could not read a number", exc_info=result)
    return "Sorry, this image could not be read."


def reading_dict(reading: Reading | str) -> dict:
    """JSON-friendly answer of /read: the reading plus a message (text None and no digits on errors)."""
    if isinstance(reading, str):
        return {"text": None, "confidence": None, "unsure": True, "digits": [], "separators": [], "message": reading}
    if reading.unsure:
        message = f"Read {reading.one_line()!r}, but some digits are unclear (orange boxes)."
    else:
        message = f"Read {reading.one_line()!r} ({reading.confidence:.1%} sure)."
    return {**reading.to_dict(), "message": message}


def number_outputs(results: list[tuple[Image.Image | None, Reading | str]]) -> tuple[list, list, list]:
    """Number tab outputs for each result: text (Markdown), image with boxes, table of digits."""
    texts, pictures, tables = [], [], []
    for image, reading in results:
        answer = reading_dict(reading)
        if answer["text"] is None:
            texts.append(answer["message"])
        else:  # a heading per line of digits
            texts.append("".join(f"## {line}\n" for line in answer["text"].split("\n")) + answer["message"])
        pictures.append(draw_reading(image, reading) if isinstance(reading, Reading) else None)
        tables.append([[position + 1, d["digit"], round(d["confidence"], 4),
                        ", ".join(f"{digit} ({p:.0%})" for digit, p in d["alternatives"]), str(tuple(d["box"]))]
                       for position, d in enumerate(answer["digits"])])
    return texts, pictures, tables


# ----- the REST route ------------------------------------------------------------------------------------------
class UploadError(Exception):
    """A request that does not even carry an image; ``status`` is the HTTP status of the answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def prepare_upload(data: bytes) -> Analysis:
    """:func:`prepare` for the bytes sent to the REST route, run in a worker process; the decoded image is left out."""
    return replace(prepare(data), image=None)


class PredictRoute:
    """``POST /api/v1/predict``: an image as the request body (or as a multipart form field ``file``) → the
    answer of the Gradio endpoint /predict, in one HTTP request instead of three.

    Images are decoded and preprocessed in ``workers`` processes, so every core works on them; the model
    inputs of concurrent requests are classified together, one model call per batch. An answer without a
    prediction comes with a 4xx status (5xx for our own failures). With ``auth`` (user, password) the route
    requires HTTP basic authentication with the same credentials as the app's login.
    """

    def __init__(self, digit_app: DigitApp, workers: int, auth: tuple[str, str] | None = None):
        self.workers = workers
        self.pool = worker_pool(workers)
        self.batcher = MicroBatcher(digit_app.classify, max_size=REST_BATCH_SIZE, max_wait=REST_BATCH_WAIT)
        self.credentials = f"{auth[0]}:{auth[1]}".encode() if auth else None

    def route(self) -> Route:
        return Route(REST_PATH, self.predict, methods=["POST"])

    async def predict(self, request: Request) -> JSONResponse:
        if self.credentials is not None and not self.authorized(request):
            return respond(Analysis("This app requires a login: send it with HTTP basic authentication.", status=401),
                           {"WWW-Authenticate": 'Basic realm="hdr"'})
        try:
            data = await read_upload(request)
        except UploadError as error:
            return respond(Analysis(str(error), status=error.status))
        for _ in range(2):
            pool = self.pool
            try:
                analysis = await asyncio.get_running_loop().run_in_executor(pool, prepare_upload, data)
                break
            except BrokenProcessPool:  # a worker died (killed, out of memory): start new workers, try again once
                if pool is self.pool:
                    log.error("a preprocessing worker died; starting %d new ones", self.workers)
                    self.pool = worker_pool(self.workers)
        else:
            return respond(Analysis("Sorry, this image could not be read.", status=500))
        if analysis.prepared is not None:
            analysis = await self.batcher(analysis)
        return respond(analysis)

    def authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            return False
        return scheme.lower() == "basic" and secrets.compare_digest(given, self.credentials)


def respond(analysis: Analysis, headers: dict | None = None) -> JSONResponse:
    """The REST answer: the dict of /predict, with status 200 when there is a prediction."""
    return JSONResponse(analysis.to_dict(), 200 if analysis.prediction else analysis.status, headers)


async def read_upload(request: Request, limit: int = MAX_FILE_BYTES) -> bytes:
    """The image sent in a request: its body, or its multipart form field ``file``; at most ``limit`` bytes."""
    too_large = UploadError(413, f"The request is too large: the limit is {limit // 2**20} MB.")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large

    async def body() -> AsyncIterator[bytes]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            yield chunk

    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return b"".join([chunk async for chunk in body()])
    try:
        form = await MultiPartParser(request.headers, body(), max_files=1, max_fields=10).parse()
    except MultiPartException as error:
        raise UploadError(400, f"The multipart form could not be read ({error.message}).") from error
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise UploadError(400, "Send the image as the request body, or as a multipart form field named 'file'.")
        return await upload.read()
    finally:
        await form.close()


# ----- the Gradio app ----------------------------------------------------------------------------------------
def build_demo(digit_app: DigitApp) -> gr.Blocks:
    """The Gradio interface and API of the app."""
    recognizer = digit_app.recognizer
    # Uploaded files are removed after an hour, so a long-running server does not fill the disk.
    with gr.Blocks(title="hdr — handwritten digit recognition", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# Handwritten digit recognition\nDraw a digit or upload a photo or scan of one.")
        gr.Markdown(f"**Model:** {recognizer.source.describe()}  \n**Line reader** (whole numbers): "
                    f"{recognizer.line_reader_source.describe()}", elem_id="model-info")
        with gr.Tabs():
            with gr.Tab("Draw", id="draw"):
                with gr.Row():
                    with gr.Column():
                        sketch = sketchpad("Draw one digit", "sketch", CANVAS_SIZE)
                        sketch_submit = gr.Button("Read the digit", variant="primary", elem_id="sketch-submit")
                    sketch_outputs = prediction_outputs("sketch", label_id="label")
                sketch_correct, sketch_feedback, sketch_feedback_status = feedback_row("sketch")
            with gr.Tab("Upload", id="upload"):
                with gr.Row():
                    with gr.Column():
                        upload = gr.File(label="Photo or scan of one digit (PNG, JPEG, WEBP, BMP, GIF, TIFF)",
                                         type="filepath", elem_id="upload")
                        upload_submit = gr.Button("Read the digit", variant="primary", elem_id="upload-submit")
                        upload_preview = gr.Image(label="Your image (red box: the ink that was read)",
                                                  elem_id="upload-preview", interactive=False, format="png")
                    upload_outputs = [upload_preview, *prediction_outputs("upload", label_id="upload-label")]
                upload_correct, upload_feedback, upload_feedback_status = feedback_row("upload")
            with gr.Tab("Number", id="number"):
                gr.Markdown("Write a whole number (digits, optionally with `.` `,` `-`), or upload a photo of one.")
                with gr.Row():
                    with gr.Column():
                        number_sketch = sketchpad("Draw a number", "number-sketch", NUMBER_CANVAS_SIZE)
                        number_sketch_submit = gr.Button("Read the drawn number", variant="primary",
                                                         elem_id="number-sketch-submit")
                        number_upload = gr.File(label="…or a photo or scan of a number", type="filepath",
                                                elem_id="number-upload")
                        number_upload_submit = gr.Button("Read the uploaded number", elem_id="number-upload-submit")
                    with gr.Column():
                        number_text = gr.Markdown(elem_id="number-text")
                        number_boxes = gr.Image(label="Digits found (orange: unsure)", elem_id="number-boxes",
                                                interactive=False, format="png")
                        number_table = gr.Dataframe(headers=DIGIT_COLUMNS, interactive=False, elem_id="number-digits")
            with gr.Tab("Batch", id="batch"):
                batch_files = gr.File(label="Many images", file_count="multiple", type="filepath",
                                      elem_id="batch-files")
                batch_mode = gr.Radio([ONE_DIGIT, WHOLE_NUMBER], value=ONE_DIGIT, label="Each image holds",
                                      elem_id="batch-mode")
                batch_submit = gr.Button("Read all", variant="primary", elem_id="batch-submit")
                batch_status = gr.Markdown(elem_id="batch-status")
                batch_table = gr.Dataframe(headers=BATCH_COLUMNS, interactive=False, wrap=True, elem_id="batch-table",
                                           column_widths=["22%", "8%", "12%", "9%", "49%"])
                batch_downloads = gr.File(label="Download (CSV, JSON)", file_count="multiple", interactive=False,
                                          elem_id="batch-downloads")

        # UI events: undocumented in the API docs (the JSON endpoints below are the API). Sketchpad
        # events get their values unprocessed and decode them per item (see decode_sketch).
        batched = dict(batch=True, max_batch_size=MAX_BATCH_SIZE, api_visibility="undocumented")
        draw = partial(digit_app.ui_draw, sketchpad=sketch)
        sketch_submit.click(draw, sketch, sketch_outputs, preprocess=False, **batched)
        sketch.change(draw, sketch, sketch_outputs, preprocess=False, trigger_mode="always_last",
                      show_progress="hidden", **batched)
        upload_submit.click(digit_app.ui_upload, upload, upload_outputs, **batched)
        upload.upload(digit_app.ui_upload, upload, upload_outputs, **batched)
        number_outputs_ = [number_text, number_boxes, number_table]
        number_sketch_submit.click(partial(digit_app.ui_number_sketch, sketchpad=number_sketch), number_sketch,
                                   number_outputs_, preprocess=False, **batched)
        number_upload_submit.click(digit_app.ui_number_upload, number_upload, number_outputs_, **batched)
        number_upload.upload(digit_app.ui_number_upload, number_upload, number_outputs_, **batched)
        batch_submit.click(digit_app.ui_batch, [batch_files, batch_mode], [batch_table, batch_downloads, batch_status],
                           api_visibility="undocumented")
        sketch_feedback.click(partial(digit_app.ui_feedback_draw, sketchpad=sketch), [sketch, sketch_correct],
                              sketch_feedback_status, preprocess=False, api_visibility="undocumented")
        upload_feedback.click(digit_app.ui_feedback_upload, [upload, upload_correct], upload_feedback_status,
                              api_visibility="undocumented")

        # API endpoints: hidden components, JSON answers; the single-image ones batch concurrent requests.
        with gr.Group(visible=False):
            api_file = gr.File(type="filepath")
            api_files = gr.File(type="filepath", file_count="multiple")
            api_digit = gr.Number(precision=0)
            api_answer = gr.JSON(label="answer")
            api_trigger = gr.Button()
        api_batched = dict(batch=True, max_batch_size=MAX_BATCH_SIZE)
        api_trigger.click(digit_app.api_predict, api_file, api_answer, api_name="predict", **api_batched)
        api_trigger.click(partial(digit_app.api_predict_sketch, sketchpad=sketch), sketch, api_answer,
                          api_name="predict_sketch", preprocess=False, **api_batched)
        api_trigger.click(digit_app.api_predict_batch, api_files, api_answer, api_name="predict_batch")
        api_trigger.click(digit_app.api_read, api_file, api_answer, api_name="read", **api_batched)
        api_trigger.click(digit_app.api_read_batch, api_files, api_answer, api_name="read_batch")
        api_trigger.click(digit_app.api_feedback, [api_file, api_digit], api_answer, api_name="feedback")
        api_trigger.click(digit_app.model_info, None, api_answer, api_name="model_info")
    return demo


def sketchpad(label: str, elem_id: str, canvas_size: tuple[int, int]) -> gr.Sketchpad:
    """A drawing canvas with a fixed black brush; its value is decoded by :func:`decode_sketch`."""
    return gr.Sketchpad(label=label, elem_id=elem_id, type="pil", image_mode="RGBA", canvas_size=canvas_size,
                        fixed_canvas=True, layers=False, transforms=(),
                        brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=BRUSH_RADIUS))


def prediction_outputs(prefix: str, label_id: str) -> list[gr.components.Component]:
    """A column with the label, the status line, the 28×28 input the model saw and its saliency map."""
    with gr.Column():
        label = gr.Label(num_top_classes=3, label="Prediction", elem_id=label_id)
        status = gr.Markdown(elem_id=f"{prefix}-status")
        with gr.Row():
            seen = gr.Image(label="What the model saw (28×28)", elem_id=f"{prefix}-seen", **SMALL_IMAGE)
            heat = gr.Image(label="Why: red = for, blue = against", elem_id=f"{prefix}-saliency", **SMALL_IMAGE)
    return [label, status, seen, heat]


def feedback_row(prefix: str) -> tuple[gr.Radio, gr.Button, gr.Markdown]:
    """'Wrong answer?' controls: the right digit, a save button and a status line."""
    with gr.Accordion("Wrong answer? Tell us the right digit", open=False, elem_id=f"{prefix}-feedback"):
        with gr.Row():
            correct = gr.Radio([str(digit) for digit in range(10)], label="The right digit is",
                               elem_id=f"{prefix}-correct")
            save = gr.Button("Save the correction", elem_id=f"{prefix}-feedback-submit")
        status = gr.Markdown(elem_id=f"{prefix}-feedback-status")
    return correct, save, status


def parse_options(argv: list[str]) -> argparse.Namespace:
    """Command-line options; each defaults to its environment variable."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("HDR_MODEL"),
                        help="model folder or hub repo id (default: the shipped model; env HDR_MODEL)")
    parser.add_argument("--revision", default=os.environ.get("HDR_REVISION"),
                        help="hub revision: branch, tag or commit (env HDR_REVISION)")
    parser.add_argument("--line-reader", default=os.environ.get("HDR_LINE_READER"),
                        help="line reader for whole numbers: folder or hub repo id (default: the shipped one; "
                             "env HDR_LINE_READER)")
    parser.add_argument("--line-reader-revision", default=os.environ.get("HDR_LINE_READER_REVISION"),
                        help="hub revision of --line-reader (env HDR_LINE_READER_REVISION)")
    parser.add_argument("--host", default=None, help="address to bind (default: env GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: env GRADIO_SERVER_PORT or the first free one from 7860)")
    parser.add_argument("--share", action="store_true", help="also ask Gradio for a temporary public link")
    parser.add_argument("--auth", default=os.environ.get("HDR_AUTH"),
                        help="require a login, given as user:password (env HDR_AUTH)")
    parser.add_argument("--feedback-dir", default=os.environ.get("HDR_FEEDBACK_DIR", "feedback"),
                        help="where corrections are stored (default: feedback/; env HDR_FEEDBACK_DIR)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("HDR_WORKERS") or os.cpu_count() or 1),
                        help=f"processes that preprocess the images of {REST_PATH} (default: one per CPU core; "
                             "env HDR_WORKERS)")
    options = parser.parse_args(argv)
    if options.auth is not None and ":" not in options.auth:
        parser.error("--auth must look like user:password")
    if options.workers < 1:
        parser.error("--workers must be at least 1")
    return options


def create_demo(options: argparse.Namespace) -> tuple[DigitApp, gr.Blocks]:
    """Load the model and build the app with its queue."""
    recognizer = Recognizer.from_pretrained(options.model, options.revision,
                                            options.line_reader, options.line_reader_revision)
    digit_app = DigitApp(recognizer, FeedbackStore(options.feedback_dir))
    return digit_app, build_demo(digit_app).queue(max_size=256)


def launch(demo: gr.Blocks, digit_app: DigitApp, options: argparse.Namespace) -> None:
    """Serve the Gradio app and the REST route until interrupted, saying plainly whether a share link was created."""
    auth = tuple(options.auth.split(":", 1)) if options.auth else None
    rest = PredictRoute(digit_app, options.workers, auth)  # before the server starts threads (see worker_pool)
    demo.launch(server_name=options.host, server_port=options.port, share=options.share, auth=auth,
                max_file_size=MAX_FILE_BYTES, ssr_mode=False, prevent_thread_lock=True,
                app_kwargs={"routes": [rest.route()]})
    if options.share and not demo.share_url:
        print(f"hdr: no public share link could be created (is there internet access?); "
              f"the app keeps running locally at {demo.local_url}", flush=True)
    print(f"hdr: serving {demo.local_url} — press Ctrl+C to stop", flush=True)
    demo.block_thread()


options = parse_options(sys.argv[1:] if __name__ == "__main__" else [])
digit_app, demo = create_demo(options)

if __name__ == "__main__":
    launch(demo, digit_app, options)
