"""The app (``app.py``) as API users meet it: a real server on 127.0.0.1, called with ``gradio_client``
and through its REST route ``POST /api/v1/predict``.

Every answer is compared with the Python ``Recognizer`` on the same file, bad input must come back
as a clear message (never an error of the server; the REST route says it with a 4xx status), and the
server must keep serving afterwards. The model is the shipped one, or the one ``HDR_MODEL`` names.
"""
from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.app_server import APP, free_port, running_app

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AuthenticationError  # noqa: E402

from bench.non_digits import render_shape  # noqa: E402
from hdr import Recognizer  # noqa: E402
from hdr.datamodule import MNISTDataModule  # noqa: E402
from hdr.feedback import load_feedback  # noqa: E402
from hdr.hub import SHIPPED_LINE_READER, SHIPPED_MODEL  # noqa: E402
from hdr.lit_module import DigitClassifier  # noqa: E402

MODEL = Path(os.environ.get("HDR_MODEL") or SHIPPED_MODEL)
pytestmark = pytest.mark.skipif(not (MODEL / "config.json").exists(), reason=f"no model at {MODEL}")
# A proxy nobody listens on: whatever the app would fetch from the internet fails at once, locally.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": "127.0.0.1,localhost", "HF_HUB_OFFLINE": "1"}


# ----- test images made from MNIST test digits -------------------------------------------------------
def on_paper(digit: np.ndarray, scale: int = 4) -> Image.Image:
    """An MNIST digit as dark ink on white paper, enlarged (as a scan or photo would be)."""
    ink = Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    return Image.fromarray(255 - np.asarray(ink)).convert("RGB")


def as_layer(digit: np.ndarray, scale: int = 8) -> Image.Image:
    """An MNIST digit as a sketchpad layer: RGB all 0, the strokes only in the alpha channel."""
    alpha = np.asarray(Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR))
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = alpha
    return Image.fromarray(rgba)


@pytest.fixture(scope="module")
def digits(mnist_test) -> dict[int, np.ndarray]:
    """A clearly written MNIST test image of each digit: the first one, except for 3 (the first 3 has a
    looped top and is flagged as not a clear digit)."""
    images, labels = mnist_test
    firsts = {digit: images[int(np.argmax(labels == digit))] for digit in range(10)}
    return {**firsts, 3: images[np.flatnonzero(labels == 3)[1]]}


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits) -> dict[str, Path]:
    """Good and bad input files."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = {}
    for digit in (2, 7):
        paths[f"paper{digit}"] = folder / f"paper{digit}.png"
        on_paper(digits[digit]).save(paths[f"paper{digit}"])
        paths[f"layer{digit}"] = folder / f"layer{digit}.png"
        as_layer(digits[digit]).save(paths[f"layer{digit}"])
    paths["paper8"] = folder / "paper8.png"
    on_paper(digits[8]).save(paths["paper8"])
    paths["jpeg3"] = folder / "three.jpg"
    on_paper(digits[3]).save(paths["jpeg3"], quality=90)
    number = np.concatenate([np.pad(digits[d], ((8, 8), (6, 6))) for d in (2, 0, 2, 6)], axis=1)
    paths["number"] = folder / "number.png"
    Image.fromarray(255 - number).resize((number.shape[1] * 3, number.shape[0] * 3)).save(paths["number"])
    second_line = np.concatenate([np.pad(digits[d], ((8, 8), (6, 6))) for d in (7, 8)], axis=1)
    two_lines = np.pad(second_line, ((0, 0), (0, number.shape[1] - second_line.shape[1])))
    paths["two_lines"] = folder / "two_lines.png"
    Image.fromarray(255 - np.concatenate([number, two_lines])).resize((number.shape[1] * 3, number.shape[0] * 6)).save(
        paths["two_lines"])
    paths["scribble"] = folder / "scribble.png"
    render_shape("scribble", 13).save(paths["scribble"])  # not wide: a wide scribble may be taken for several digits
    paths["not_image"] = folder / "notes.png"
    paths["not_image"].write_text("this is text, not a picture\n")
    paths["truncated"] = folder / "truncated.png"
    paths["truncated"].write_bytes(paths["paper7"].read_bytes()[:300])
    paths["empty"] = folder / "empty.png"
    paths["empty"].write_bytes(b"")
    paths["huge"] = folder / "huge.png"
    Image.new("L", (9000, 6000), 255).save(paths["huge"])  # 54 Mpx of white paper, a small file
    paths["blank_layer"] = folder / "blank_layer.png"
    Image.new("RGBA", (360, 360), (0, 0, 0, 0)).save(paths["blank_layer"])
    paths["blank_paper"] = folder / "blank_paper.png"
    Image.new("L", (112, 112), 255).save(paths["blank_paper"])
    return paths


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.from_pretrained(str(MODEL))


@pytest.fixture(scope="module")
def feedback_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("feedback")


@pytest.fixture(scope="module")
def app(feedback_dir):
    """The app served by ``python app.py`` on a free loopback port, with its own feedback folder."""
    env = {**OFFLINE, "HDR_FEEDBACK_DIR": str(feedback_dir)}
    if MODEL != SHIPPED_MODEL:
        env["HDR_MODEL"] = str(MODEL)
    with running_app(env=env) as running:
        yield running


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False)


def sketch(*layers: Path) -> dict:
    """The sketchpad value as gradio_client sends it: layer files; no background or composite."""
    return {"background": None, "layers": [handle_file(str(layer)) for layer in layers], "composite": None}


def assert_same_answer(answer: dict, expected) -> None:
    """An API answer equals the Recognizer's prediction for the same image."""
    assert answer["digit"] == expected.digit
    assert answer["unsure"] == expected.unsure
    assert answer["confidence"] == pytest.approx(expected.confidence, abs=1e-5)
    assert answer["probabilities"] == pytest.approx(expected.probabilities, abs=1e-5)
    assert answer["message"]


def assert_still_serving(client: Client, files) -> None:
    assert client.predict(handle_file(str(files["paper7"])), api_name="/predict")["digit"] == 7


# ----- answers ---------------------------------------------------------------------------------------------
def test_an_eight_is_an_eight_in_the_message(client, files):
    answer = client.predict(handle_file(str(files["paper8"])), api_name="/predict")
    assert answer["digit"] == 8 and answer["message"].startswith("Looks like an 8 (")


@pytest.mark.parametrize("name, digit", [("paper7", 7), ("paper2", 2), ("jpeg3", 3)])
def test_an_uploaded_digit_is_read_as_the_recognizer_reads_it(client, recognizer, files, name, digit):
    answer = client.predict(handle_file(str(files[name])), api_name="/predict")
    assert answer["digit"] == digit and not answer["unsure"]
    assert f"Looks like a {digit}" in answer["message"]
    assert_same_answer(answer, recognizer.predict(files[name]))


def test_a_scribble_gets_no_answer_but_the_best_guesses(client, recognizer, files):
    # The top probability alone (92%) would have passed it as a digit; it looks too little like any digit.
    answer = client.predict(handle_file(str(files["scribble"])), api_name="/predict")
    assert answer["unsure"] and "does not look like a clear digit" in answer["message"]
    assert f"{answer['digit']} (" in answer["message"].split("Best guesses:")[1]
    assert_same_answer(answer, recognizer.predict(files["scribble"]))


@pytest.mark.parametrize("digit", [7, 2])
def test_a_sketch_with_the_strokes_in_the_alpha_channel_is_read(client, recognizer, files, digit):
    answer = client.predict(sketch(files[f"layer{digit}"]), api_name="/predict_sketch")
    assert answer["digit"] == digit and not answer["unsure"]
    assert_same_answer(answer, recognizer.predict(files[f"layer{digit}"]))


def test_a_batch_gives_one_row_per_file_in_order_with_errors_in_their_rows(client, recognizer, files):
    names = ["paper7", "not_image", "paper2", "empty", "jpeg3"]
    rows = client.predict([handle_file(str(files[name])) for name in names], api_name="/predict_batch")
    assert [row["file"] for row in rows] == [files[name].name for name in names]
    for name, row in zip(names, rows):
        if name in ("not_image", "empty"):
            assert row["digit"] is None and row["message"]
        else:
            assert_same_answer(row, recognizer.predict(files[name]))
    assert [row["digit"] for row in rows] == [7, None, 2, None, 3]


def test_a_written_number_is_read_whole(client, recognizer, files):
    answer = client.predict(handle_file(str(files["number"])), api_name="/read")
    assert answer["text"] == "2026"
    assert answer == {**recognizer.read(files["number"]).to_dict(), "message": answer["message"]}
    assert [digit["box"][0] for digit in answer["digits"]] == sorted(d["box"][0] for d in answer["digits"])


def test_numbers_on_two_lines_are_read_line_by_line(client, files):
    answer = client.predict(handle_file(str(files["two_lines"])), api_name="/read")
    assert answer["text"] == "2026\n78"
    assert "'2026 / 78'" in answer["message"]
    assert [digit["digit"] for digit in answer["digits"]] == [2, 0, 2, 6, 7, 8]


def test_a_number_sent_as_one_digit_gets_no_digit_but_a_pointer_to_number_reading(app, client, recognizer, files):
    answer = client.predict(handle_file(str(files["number"])), api_name="/predict")
    assert answer["unsure"] and answer["several_digits"]
    assert "several digits" in answer["message"] and "Number tab" in answer["message"]
    assert_same_answer(answer, recognizer.predict(files["number"]))
    assert post(app.url, files["number"].read_bytes()) == (200, answer)


def test_a_batch_of_numbers_gives_one_row_per_file_in_order_with_errors_in_their_rows(client, recognizer, files):
    names = ["number", "not_image", "blank_paper", "paper7"]
    rows = client.predict([handle_file(str(files[name])) for name in names], api_name="/read_batch")
    assert [row["file"] for row in rows] == [files[name].name for name in names]
    assert [row["text"] for row in rows] == ["2026", None, None, "7"]
    assert rows[0] == {"file": "number.png", **recognizer.read(files["number"]).to_dict(), "message": rows[0]["message"]}
    assert "not an image" in rows[1]["message"] and rows[1]["digits"] == []
    assert rows[2]["message"].startswith("No digits found")
    assert len(rows[3]["digits"]) == 1 and rows[3]["digits"][0]["digit"] == 7


def test_model_info_names_the_served_model(client):
    info = client.predict(api_name="/model_info")
    assert info["kind"] == ("shipped" if MODEL == SHIPPED_MODEL else "local")
    assert Path(info["folder"]).resolve() == MODEL.resolve()
    assert info["description"]
    lines = info["line_reader"]  # where the line reader (whole numbers) came from
    assert lines["kind"] == "shipped" and Path(lines["folder"]) == SHIPPED_LINE_READER
    assert lines["description"] == "shipped model (checkpoints/hdr-lines)"


# ----- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, words", [
    ("not_image", "not an image"),
    ("truncated", "corrupt or truncated"),
    ("empty", "empty"),
    ("huge", "too large"),
])
def test_a_bad_file_gets_a_clear_message_and_the_server_keeps_serving(client, files, name, words):
    for endpoint in ("/predict", "/read"):
        answer = client.predict(handle_file(str(files[name])), api_name=endpoint)
        assert words in answer["message"], answer
        assert answer.get("digit") is None and answer.get("text") is None
    assert_still_serving(client, files)


@pytest.mark.parametrize("value", [
    {"background": None, "layers": [], "composite": None},  # the untouched canvas
    None,
    "blank_layer",  # drawn and erased again: a layer with no ink
])
def test_an_empty_canvas_asks_for_a_drawing(client, files, value):
    if value == "blank_layer":
        value = sketch(files["blank_layer"])
    answer = client.predict(value, api_name="/predict_sketch")
    assert answer["digit"] is None
    assert answer["message"] == "Please draw a digit first."
    assert_still_serving(client, files)


def test_a_corrupt_sketch_layer_gets_a_message(client, files):
    answer = client.predict(sketch(files["truncated"]), api_name="/predict_sketch")
    assert answer["digit"] is None and "could not be read" in answer["message"]
    assert_still_serving(client, files)


def test_concurrent_requests_each_get_their_own_answer(client, files):
    """Requests batched into one model call must not mix up their answers or errors."""
    names = ["paper7", "not_image", "paper2", "empty", "jpeg3", "paper7", "truncated", "paper2"] * 2
    jobs = [client.submit(handle_file(str(files[name])), api_name="/predict") for name in names]
    answers = [job.result(timeout=120) for job in jobs]
    expected = {"paper7": 7, "paper2": 2, "jpeg3": 3}
    assert [answer["digit"] for answer in answers] == [expected.get(name) for name in names]


# ----- the REST route ------------------------------------------------------------------------------------
REST_PATH = "/api/v1/predict"


def post(url: str, body: bytes, content_type: str = "image/png",
         auth: tuple[str, str] | None = None) -> tuple[int, dict]:
    """POST ``body`` to the REST route: the HTTP status and the JSON answer (errors too)."""
    request = urllib.request.Request(url + REST_PATH, data=body, headers={"Content-Type": content_type})
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def multipart(field: str, data: bytes) -> tuple[bytes, str]:
    """A multipart form with one file field: the body and its content type."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def assert_rest_still_serving(app, files) -> None:
    status, answer = post(app.url, files["paper7"].read_bytes())
    assert status == 200 and answer["digit"] == 7, answer


@pytest.mark.parametrize("name, digit", [("paper7", 7), ("paper2", 2), ("jpeg3", 3)])
def test_the_rest_route_answers_as_gradio_predict_does(app, client, recognizer, files, name, digit):
    data = files[name].read_bytes()
    status, answer = post(app.url, data)
    assert status == 200 and answer["digit"] == digit and not answer["unsure"]
    assert answer == client.predict(handle_file(str(files[name])), api_name="/predict")
    assert_same_answer(answer, recognizer.predict(files[name]))
    assert post(app.url, *multipart("file", data)) == (200, answer)


@pytest.mark.parametrize("body, status, words", [
    ("not_image", 400, "not an image"),
    ("truncated", 400, "corrupt or truncated"),
    ("empty", 400, "empty"),
    ("huge", 400, "too large"),  # 54 megapixels
    ("blank_paper", 422, "No ink found"),
    (multipart("image", b"a file in the wrong field"), 400, "multipart form field named 'file'"),
    ((b"--x\r\nno headers, no end", "multipart/form-data; boundary=x"), 400, "multipart form could not be read"),
])
def test_bad_input_to_the_rest_route_gets_a_4xx_json_error(app, files, body, status, words):
    if isinstance(body, str):
        body = files[body].read_bytes()
    body, content_type = body if isinstance(body, tuple) else (body, "image/png")
    answer_status, answer = post(app.url, body, content_type)
    assert answer_status == status and words in answer["message"], (answer_status, answer)
    assert answer["digit"] is None
    assert_rest_still_serving(app, files)


def test_a_request_over_the_size_limit_gets_413_before_its_body_is_sent(app, files):
    connection = http.client.HTTPConnection(urlsplit(app.url).netloc, timeout=60)
    try:
        connection.putrequest("POST", REST_PATH)
        connection.putheader("Content-Length", str(20 * 2**20 + 1))  # over the 20 MB limit
        connection.endheaders()  # the body is never sent: the declared length is enough to refuse it
        response = connection.getresponse()
        assert response.status == 413 and "too large" in json.load(response)["message"]
    finally:
        connection.close()
    assert_rest_still_serving(app, files)


def test_concurrent_rest_requests_each_get_their_own_answer(app, files):
    names = ["paper7", "not_image", "paper2", "empty", "jpeg3", "paper7", "truncated", "paper2"] * 4
    with ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(lambda name: post(app.url, files[name].read_bytes()), names))
    expected = {"paper7": 7, "paper2": 2, "jpeg3": 3}
    assert [answer["digit"] for _, answer in answers] == [expected.get(name) for name in names]
    assert [status for status, _ in answers] == [200 if name in expected else 400 for name in names]


def test_the_rest_route_replaces_a_worker_that_died(app, files):
    workers = app.worker_pids()
    assert workers, "the app has no preprocessing workers"
    os.kill(workers[0], signal.SIGKILL)
    assert_rest_still_serving(app, files)
    assert workers[0] not in app.worker_pids()


# ----- feedback --------------------------------------------------------------------------------------------
def test_a_correction_is_stored_and_the_training_data_includes_it(client, feedback_dir, files, data_root):
    before = len(load_feedback(feedback_dir)[1])
    answer = client.predict(handle_file(str(files["paper2"])), 5, api_name="/feedback")
    assert answer["saved"], answer
    record = json.loads((feedback_dir / "log.jsonl").read_text().splitlines()[-1])
    assert record["correct_digit"] == 5 and record["predicted_digit"] == 2
    assert record["sample"].startswith("5/") and (feedback_dir / record["sample"]).exists()
    assert (feedback_dir / record["original"]).exists()
    with Image.open(feedback_dir / record["sample"]) as sample:
        assert sample.size == (28, 28) and np.asarray(sample).max() > 200  # white ink on black, MNIST style

    images, labels = load_feedback(feedback_dir)
    assert len(labels) == before + 1 and 5 in labels.tolist()
    data = MNISTDataModule(data_root=str(data_root), download=False, val_size=100, train_subset=50,
                           feedback_dir=str(feedback_dir), feedback_repeats=3)
    data.setup("fit")
    train_images, train_labels = data.train_set.tensors
    assert len(train_labels) == 50 + 3 * len(labels)
    assert np.array_equal(train_images[50:50 + len(labels)].numpy(), images)
    assert np.array_equal(train_labels[50:].numpy(), np.tile(labels, 3))


def test_a_correction_without_a_prediction_or_digit_or_of_several_digits_is_refused(client, feedback_dir, files):
    assert not client.predict(handle_file(str(files["empty"])), 5, api_name="/feedback")["saved"]
    answer = client.predict(handle_file(str(files["paper7"])), 11, api_name="/feedback")
    assert not answer["saved"] and "0–9" in answer["message"]
    assert not (feedback_dir / "7").exists()
    answer = client.predict(handle_file(str(files["number"])), 2, api_name="/feedback")  # "2026" is no digit 2
    assert not answer["saved"] and "several digits" in answer["message"]
    assert not (feedback_dir / "2").exists()


def test_fine_tuning_starts_from_the_served_weights(recognizer):
    config = json.loads((MODEL / "config.json").read_text())
    module = DigitClassifier(widths=config["widths"], members=config["members"], init_from=str(MODEL))
    for name, value in recognizer.model.state_dict().items():
        assert torch.equal(module.net.state_dict()[name], value), name
    with pytest.raises(ValueError, match="does not match"):
        DigitClassifier(widths=[8, 16], init_from=str(MODEL))
    with pytest.raises(ValueError, match="does not match"):
        DigitClassifier(widths=config["widths"], members=1, init_from=str(MODEL))


def test_the_fine_tuning_config_fits_the_shipped_model():
    model = yaml.safe_load((APP.parent / "configs" / "finetune.yaml").read_text())["model"]["init_args"]
    shipped = json.loads((SHIPPED_MODEL / "config.json").read_text())
    assert (APP.parent / model["init_from"]).resolve() == SHIPPED_MODEL.resolve()
    assert (model["widths"], model["members"]) == (shipped["widths"], shipped["members"])


# ----- the README ------------------------------------------------------------------------------------------
def test_the_readme_api_example_runs_as_printed(app, files, tmp_path, monkeypatch):
    readme = (APP.parent / "README.md").read_text()
    example = readme.split("<!-- app-api-example")[1].split("```python\n")[1].split("```")[0]
    assert '"http://127.0.0.1:7860/"' in example
    for name, source in [("digit.png", "paper7"), ("strokes.png", "layer7"), ("number.png", "number")]:
        (tmp_path / name).write_bytes(files[source].read_bytes())
    (tmp_path / "notes.txt").write_text("not a picture")
    monkeypatch.chdir(tmp_path)
    exec(example.replace('"http://127.0.0.1:7860/"', repr(app.url)), {})  # noqa: S102 (our own README)


def test_the_readme_rest_examples_run_as_printed(app, files, tmp_path, monkeypatch):
    readme = (APP.parent / "README.md").read_text()
    examples = readme.split("<!-- app-rest-example")[1]
    shell = examples.split("```bash\n")[1].split("```")[0]
    python = examples.split("```python\n")[1].split("```")[0]
    (tmp_path / "digit.png").write_bytes(files["paper7"].read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(python.replace("http://127.0.0.1:7860", app.url), namespace)  # noqa: S102 (our own README)
    assert namespace["answer"]["digit"] == 7
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the README's curl commands were not run")
    commands = [line.split(" #")[0] for line in shell.splitlines() if line.startswith("curl ")]
    assert len(commands) == 3
    for command in commands:  # the app has no login here: the one with -u gets the same answer
        output = subprocess.run([*shlex.split(command.replace("http://127.0.0.1:7860", app.url)), "--silent"],
                                capture_output=True, check=True).stdout
        assert json.loads(output)["digit"] == 7, command


# ----- launching -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def launched(tmp_path: Path, *args: str, env: dict | None = None):
    """``python app.py ARGS`` on a free loopback port until it says it serves; yields (url, its output so far)."""
    port = free_port()
    environment = {**os.environ, **OFFLINE, "GRADIO_ANALYTICS_ENABLED": "False", "HDR_FEEDBACK_DIR": str(tmp_path),
                   **({"HDR_MODEL": str(MODEL)} if MODEL != SHIPPED_MODEL else {}), **(env or {})}
    log = tmp_path / "app.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, str(APP), "--host", "127.0.0.1", "--port", str(port), *args],
                                   cwd=APP.parent, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "hdr: serving" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}", log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_share_without_internet_says_so_and_keeps_serving_locally(tmp_path, files):
    with launched(tmp_path, "--share") as (url, output):
        assert "no public share link could be created" in output, output
        assert f"hdr: serving {url}" in output
        answer = Client(url, verbose=False).predict(handle_file(str(files["paper7"])), api_name="/predict")
        assert answer["digit"] == 7


def test_a_login_is_required_when_auth_is_set(tmp_path, files):
    with launched(tmp_path, env={"HDR_AUTH": "ada:lovelace"}) as (url, output):
        assert "hdr: serving" in output, output
        with pytest.raises(AuthenticationError):
            Client(url, verbose=False)
        client = Client(url, auth=("ada", "lovelace"), verbose=False)
        assert client.predict(handle_file(str(files["paper7"])), api_name="/predict")["digit"] == 7

        data = files["paper7"].read_bytes()
        for auth in (None, ("ada", "wrong"), ("eve", "lovelace")):
            status, answer = post(url, data, auth=auth)
            assert status == 401 and answer["digit"] is None and "login" in answer["message"], answer
        status, answer = post(url, data, auth=("ada", "lovelace"))
        assert status == 200 and answer["digit"] == 7
