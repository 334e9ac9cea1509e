"""The hdr web app: draw or upload handwritten digits and see what the model reads, and why.

    python app.py                                   # shipped model on http://127.0.0.1:7860
    python app.py --model user/hdr-mnist --revision v2 --host 0.0.0.0 --port 8080 --auth me:secret
    python app.py --share                           # also ask Gradio for a public link

Every option also has an environment variable (HDR_MODEL, HDR_REVISION, HDR_AUTH, HDR_FEEDBACK_DIR,
GRADIO_SERVER_NAME, GRADIO_SERVER_PORT). API endpoints for ``gradio_client``: /predict, /predict_sketch,
/predict_batch, /feedback, /model_info (see README, section "App").
"""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls; must precede the import

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from gradio.components.image_editor import EditorData  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from hdr import BlankImageError, InvalidImageError, Prediction, Recognizer  # noqa: E402
from hdr.feedback import FeedbackStore  # noqa: E402
from hdr.preprocess import load_image, preprocess  # noqa: E402
from hdr.saliency import integrated_gradients, overlay, upscale  # noqa: E402

log = logging.getLogger("hdr.app")

MAX_FILE_SIZE = "20mb"
MAX_BATCH_SIZE = 16  # requests of concurrent users that share one model call
MAX_BATCH_FILES = 500  # files read per batch request; the rest are reported as skipped
CANVAS_SIZE = (360, 360)
BRUSH_RADIUS = 12  # px on the canvas; a digit drawn across most of it gets MNIST-like stroke widths
PREVIEW_SIZE = 480
DRAW_FIRST = "Please draw a digit first."
UPLOAD_FIRST = "Please upload an image first."
BATCH_COLUMNS = ["file", "digit", "confidence", "unsure", "message"]


@dataclass
class Analysis:
    """What the app found in one image: a prediction, or a message saying why there is none."""

    message: str
    prediction: Prediction | None = None
    image: Image.Image | None = None  # the image as loaded (for the preview and for feedback)
    ink_box: tuple[int, int, int, int] | None = None

    def to_dict(self) -> dict:
        """JSON-friendly answer of the API: digit, confidence, probabilities, unsure, message."""
        if self.prediction is None:
            return {"digit": None, "confidence": None, "probabilities": None, "unsure": True,
                    "message": self.message}
        return {**self.prediction.to_dict(), "message": self.message}


def describe(prediction: Prediction) -> str:
    """A sentence for people: the digit and how sure the model is, or why it is not sure."""
    if not prediction.unsure:
        return f"Looks like a {prediction.digit} ({prediction.confidence:.1%} sure)."
    guesses = ", ".join(f"{digit} ({probability:.0%})" for digit, probability in prediction.top(3))
    return ("This does not look like a clear digit, so there is no answer. "
            f"Best guesses: {guesses}. Try one digit, large and centred.")


def sketch_image(sketch: Image.Image | dict | None) -> Image.Image | None:
    """Flatten the drawn layers of a sketchpad value into one RGBA image; None when nothing was drawn.

    The strokes live in the alpha channel of the layers; the background and composite are ignored
    because their colour depends on the browser's light or dark theme.
    """
    layers = [layer for layer in (sketch or {}).get("layers") or [] if layer is not None]
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

    def __init__(self, recognizer: Recognizer, feedback: FeedbackStore, sketchpad: gr.Sketchpad | None = None):
        self.recognizer = recognizer
        self.feedback = feedback
        self.sketchpad = sketchpad  # decodes the sketchpad payloads the events receive unprocessed

    # ----- core -------------------------------------------------------------------------------
    def analyse(self, sources: list, missing: str = UPLOAD_FIRST, blank: str | None = None) -> list[Analysis]:
        """Read one digit from each source (path, PIL image, Analysis for an early error, None).

        ``missing`` is the message for an absent input, ``blank`` (if given) the one for an image
        without ink instead of the preprocessing's own.

        Errors stay with their own item: one bad file never spoils the answers of the others,
        which matters because requests of different users are batched together.
        """
        results: list[Analysis] = []
        ready: list[tuple[Analysis, np.ndarray]] = []
        for source in sources:
            if isinstance(source, Analysis):
                results.append(source)
                continue
            if source is None:
                results.append(Analysis(missing))
                continue
            try:
                image = load_image(source)
                prepared = preprocess(image)
            except BlankImageError as error:
                results.append(Analysis(blank or str(error)))
                continue
            except InvalidImageError as error:
                results.append(Analysis(str(error)))
                continue
            except Exception:  # a bug or an unforeseen file must not fail the whole batch
                log.exception("could not read %r", source)
                results.append(Analysis("Sorry, this image could not be read."))
                continue
            analysis = Analysis("", image=image, ink_box=prepared.ink_box)
            results.append(analysis)
            ready.append((analysis, prepared.model_input))
        predictions = self.recognizer.classify([model_input for _, model_input in ready])
        for (analysis, _), prediction in zip(ready, predictions):
            analysis.prediction = prediction
            analysis.message = describe(prediction)
        return results

    def analyse_sketches(self, payloads: list[dict | None]) -> list[Analysis]:
        """:meth:`analyse` for raw sketchpad payloads."""
        return self.analyse([self.decode_sketch(payload) for payload in payloads], missing=DRAW_FIRST, blank=DRAW_FIRST)

    def decode_sketch(self, payload: dict | None) -> Image.Image | Analysis | None:
        """The drawing in a raw sketchpad payload, or an Analysis explaining why it cannot be read."""
        if payload is None:
            return None
        try:
            return sketch_image(self.sketchpad.preprocess(EditorData.model_validate(payload)))
        except Exception:  # e.g. a corrupt layer file sent through the API
            log.exception("could not decode a sketchpad payload")
            return Analysis("The drawing could not be read; please draw again.")

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
    def api_predict(self, paths: list[str | None]) -> tuple[list[dict]]:
        """Batched /predict: one image file per request → digit, confidence, probabilities, unsure, message."""
        return ([analysis.to_dict() for analysis in self.analyse(paths)],)

    def api_predict_sketch(self, payloads: list[dict | None]) -> tuple[list[dict]]:
        """Batched /predict_sketch: one sketchpad value per request → the same dict as /predict."""
        analyses = self.analyse_sketches(payloads)
        return ([analysis.to_dict() for analysis in analyses],)

    def api_predict_batch(self, paths: list[str] | None) -> list[dict]:
        """/predict_batch: many files → one row per file (file, digit, confidence, unsure, message)."""
        paths = list(paths or [])
        analyses = self.analyse(paths[:MAX_BATCH_FILES])
        analyses += [Analysis(f"Skipped: at most {MAX_BATCH_FILES} files per batch.")] * len(paths[MAX_BATCH_FILES:])
        return [{"file": Path(path).name, **analysis.to_dict()} for path, analysis in zip(paths, analyses)]

    def api_feedback(self, path: str | None, correct_digit: float | None) -> dict:
        """/feedback: an image and its right digit → stored in the feedback folder."""
        return {"message": self.save_feedback(self.analyse([path])[0], correct_digit, "api")}

    def model_info(self) -> dict:
        """/model_info: which model answers (kind, repo_id, revision, commit, folder, note, description)."""
        info = self.recognizer.source.to_dict()
        # gradio_client would take any dict with a "path" key for a file to download.
        info["folder"] = info.pop("path")
        return {**info, "description": self.recognizer.source.describe()}

    # ----- UI handlers ---------------------------------------------------------------------------
    def ui_draw(self, payloads: list[dict | None]) -> tuple[list, list, list, list]:
        """Batched Draw tab: label, status, what the model saw, saliency."""
        analyses = self.analyse_sketches(payloads)
        seen, heat = self.explain(analyses)
        return [label_value(a) for a in analyses], [a.message for a in analyses], seen, heat

    def ui_upload(self, paths: list[str | None]) -> tuple[list, list, list, list, list]:
        """Batched Upload tab: preview with the ink box, label, status, what the model saw, saliency."""
        analyses = self.analyse(paths)
        seen, heat = self.explain(analyses)
        return ([preview(a) for a in analyses], [label_value(a) for a in analyses],
                [a.message for a in analyses], seen, heat)

    def ui_batch(self, paths: list[str] | None):
        """Batch tab: the table and the CSV + JSON downloads."""
        rows = self.api_predict_batch(paths)
        if not rows:
            return None, None, UPLOAD_FIRST
        table = [[row["file"], row["digit"], None if row["confidence"] is None else round(row["confidence"], 4),
                  row["unsure"], row["message"]] for row in rows]
        folder = Path(tempfile.mkdtemp(prefix="hdr-batch-"))
        with open(folder / "predictions.csv", "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([BATCH_COLUMNS, *table])
        (folder / "predictions.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
        read = sum(row["digit"] is not None for row in rows)
        sure = sum(row["digit"] is not None and not row["unsure"] for row in rows)
        summary = f"Read {read} of {len(rows)} files; {sure} with a confident answer."
        return table, [str(folder / "predictions.csv"), str(folder / "predictions.json")], summary

    def ui_feedback_draw(self, payload: dict | None, correct_digit: str | None) -> str:
        analysis = self.analyse_sketches([payload])[0]
        return self.save_feedback(analysis, correct_digit, "draw")

    def ui_feedback_upload(self, path: str | None, correct_digit: str | None) -> str:
        return self.save_feedback(self.analyse([path])[0], correct_digit, "upload")

    def save_feedback(self, analysis: Analysis, correct_digit, mode: str) -> str:
        """Store a correction; return what happened, for people."""
        if analysis.prediction is None:
            return f"Nothing to correct yet: {analysis.message}"
        try:
            digit = int(correct_digit)
        except (TypeError, ValueError):
            digit = -1
        if digit not in range(10):
            return "Pick the right digit (0–9) first."
        sample = self.feedback.save(analysis.prediction.model_input, digit, analysis.prediction.to_dict(),
                                    original=analysis.image,
                                    extra={"mode": mode, "model": self.recognizer.source.to_dict()})
        return f"Thanks! Saved as a {digit} ({sample.name}); it will be used when the model is fine-tuned."


def label_value(analysis: Analysis) -> dict | str | None:
    """gr.Label value: calibrated probabilities when sure, 'Not sure' when unsure, empty on errors."""
    prediction = analysis.prediction
    if prediction is None:
        return None
    if prediction.unsure:
        return "Not sure"
    return {str(digit): probability for digit, probability in enumerate(prediction.probabilities)}


def preview(analysis: Analysis) -> Image.Image | None:
    """The uploaded image, shrunk for display, with a box around the ink the model read."""
    if analysis.image is None:
        return None
    image = analysis.image.convert("RGB")
    scale = min(1.0, PREVIEW_SIZE / max(image.size))
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    if analysis.ink_box is not None:
        box = [round(value * scale) for value in analysis.ink_box]
        ImageDraw.Draw(image).rectangle(box, outline=(230, 30, 30), width=max(2, round(image.width / 150)))
    return image


def build_demo(digit_app: DigitApp) -> gr.Blocks:
    """The Gradio interface and API of the app."""
    recognizer = digit_app.recognizer
    with gr.Blocks(title="hdr — handwritten digit recognition") as demo:
        gr.Markdown("# Handwritten digit recognition\nDraw a digit or upload a photo or scan of one.")
        gr.Markdown(f"**Model:** {recognizer.source.describe()}", elem_id="model-info")
        with gr.Tabs():
            with gr.Tab("Draw", id="draw"):
                with gr.Row():
                    with gr.Column():
                        sketch = gr.Sketchpad(
                            label="Draw one digit", elem_id="sketch", type="pil", image_mode="RGBA",
                            canvas_size=CANVAS_SIZE, fixed_canvas=True, layers=False, transforms=(),
                            brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=BRUSH_RADIUS),
                        )
                        digit_app.sketchpad = sketch
                        sketch_submit = gr.Button("Read the digit", variant="primary", elem_id="sketch-submit")
                    with gr.Column():
                        sketch_label = gr.Label(num_top_classes=3, label="Prediction", elem_id="label")
                        sketch_status = gr.Markdown(elem_id="sketch-status")
                        with gr.Row():
                            sketch_seen = gr.Image(label="What the model saw (28×28)", elem_id="sketch-seen",
                                                   interactive=False, format="png")
                            sketch_heat = gr.Image(label="Why: red = for, blue = against", elem_id="sketch-saliency",
                                                   interactive=False, format="png")
                sketch_correct, sketch_feedback, sketch_feedback_status = feedback_row("sketch")
            with gr.Tab("Upload", id="upload"):
                with gr.Row():
                    with gr.Column():
                        upload = gr.File(label="Photo or scan of one digit (PNG, JPEG, WEBP, BMP, GIF, TIFF)",
                                         type="filepath", elem_id="upload")
                        upload_submit = gr.Button("Read the digit", variant="primary", elem_id="upload-submit")
                        upload_preview = gr.Image(label="Your image (red box: the ink that was read)",
                                                  elem_id="upload-preview", interactive=False, format="png")
                    with gr.Column():
                        upload_label = gr.Label(num_top_classes=3, label="Prediction", elem_id="upload-label")
                        upload_status = gr.Markdown(elem_id="upload-status")
                        with gr.Row():
                            upload_seen = gr.Image(label="What the model saw (28×28)", elem_id="upload-seen",
                                                   interactive=False, format="png")
                            upload_heat = gr.Image(label="Why: red = for, blue = against", elem_id="upload-saliency",
                                                   interactive=False, format="png")
                upload_correct, upload_feedback, upload_feedback_status = feedback_row("upload")
            with gr.Tab("Batch", id="batch"):
                batch_files = gr.File(label="Many images, one digit each", file_count="multiple",
                                      type="filepath", elem_id="batch-files")
                batch_submit = gr.Button("Read all", variant="primary", elem_id="batch-submit")
                batch_status = gr.Markdown(elem_id="batch-status")
                batch_table = gr.Dataframe(headers=BATCH_COLUMNS, interactive=False, wrap=True, elem_id="batch-table")
                batch_downloads = gr.File(label="Download (CSV, JSON)", file_count="multiple", interactive=False,
                                          elem_id="batch-downloads")

        # UI events: undocumented in the API docs (the JSON endpoints below are the API).
        batched = dict(batch=True, max_batch_size=MAX_BATCH_SIZE, api_visibility="undocumented")
        sketch_outputs = [sketch_label, sketch_status, sketch_seen, sketch_heat]
        sketch_submit.click(digit_app.ui_draw, sketch, sketch_outputs, preprocess=False, **batched)
        sketch.change(digit_app.ui_draw, sketch, sketch_outputs, preprocess=False, trigger_mode="always_last",
                      show_progress="hidden", **batched)
        upload_outputs = [upload_preview, upload_label, upload_status, upload_seen, upload_heat]
        upload_submit.click(digit_app.ui_upload, upload, upload_outputs, **batched)
        upload.upload(digit_app.ui_upload, upload, upload_outputs, **batched)
        batch_submit.click(digit_app.ui_batch, batch_files, [batch_table, batch_downloads, batch_status],
                           api_visibility="undocumented")
        sketch_feedback.click(digit_app.ui_feedback_draw, [sketch, sketch_correct], sketch_feedback_status,
                              preprocess=False, api_visibility="undocumented")
        upload_feedback.click(digit_app.ui_feedback_upload, [upload, upload_correct], upload_feedback_status,
                              api_visibility="undocumented")

        # API endpoints: hidden components, JSON answers.
        with gr.Group(visible=False):
            api_file = gr.File(type="filepath")
            api_files = gr.File(type="filepath", file_count="multiple")
            api_digit = gr.Number(precision=0)
            api_answer = gr.JSON()
            api_trigger = gr.Button()
        api_batched = dict(batch=True, max_batch_size=MAX_BATCH_SIZE)
        api_trigger.click(digit_app.api_predict, api_file, api_answer, api_name="predict", **api_batched)
        api_trigger.click(digit_app.api_predict_sketch, sketch, api_answer, api_name="predict_sketch",
                          preprocess=False, **api_batched)
        api_trigger.click(digit_app.api_predict_batch, api_files, api_answer, api_name="predict_batch")
        api_trigger.click(digit_app.api_feedback, [api_file, api_digit], api_answer, api_name="feedback")
        api_trigger.click(digit_app.model_info, None, api_answer, api_name="model_info")
    return demo


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
    parser.add_argument("--host", default=None, help="address to bind (default: env GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: env GRADIO_SERVER_PORT or the first free one from 7860)")
    parser.add_argument("--share", action="store_true", help="also ask Gradio for a temporary public link")
    parser.add_argument("--auth", default=os.environ.get("HDR_AUTH"),
                        help="require a login, given as user:password (env HDR_AUTH)")
    parser.add_argument("--feedback-dir", default=os.environ.get("HDR_FEEDBACK_DIR", "feedback"),
                        help="where corrections are stored (default: feedback/; env HDR_FEEDBACK_DIR)")
    options = parser.parse_args(argv)
    if options.auth is not None and ":" not in options.auth:
        parser.error("--auth must look like user:password")
    return options


def create_demo(options: argparse.Namespace) -> gr.Blocks:
    """Load the model and build the app with its queue."""
    recognizer = Recognizer.from_pretrained(options.model, options.revision)
    demo = build_demo(DigitApp(recognizer, FeedbackStore(options.feedback_dir)))
    return demo.queue(max_size=256)


def launch(demo: gr.Blocks, options: argparse.Namespace) -> None:
    """Serve until interrupted, saying plainly whether a share link was created."""
    auth = tuple(options.auth.split(":", 1)) if options.auth else None
    demo.launch(server_name=options.host, server_port=options.port, share=options.share, auth=auth,
                max_file_size=MAX_FILE_SIZE, ssr_mode=False, prevent_thread_lock=True)
    if options.share and not demo.share_url:
        print(f"hdr: no public share link could be created (is there internet access?); "
              f"the app keeps running locally at {demo.local_url}", flush=True)
    print(f"hdr: serving {demo.local_url} — press Ctrl+C to stop", flush=True)
    demo.block_thread()


options = parse_options(sys.argv[1:] if __name__ == "__main__" else [])
demo = create_demo(options)

if __name__ == "__main__":
    launch(demo, options)
