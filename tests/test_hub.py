"""The model hub workflow with the real huggingface_hub client against a loopback Hub-compatible server.

Push, pull by branch/tag/commit, outages (hub down, hub hanging), damaged or mismatched files,
pickle-only repos, the line reader through the same hub, and the app serving pulled models.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

from hdr import Recognizer
from hdr.cli import build_parser
from hdr.hub import (
    SHIPPED_LINE_READER,
    SHIPPED_MODEL,
    ModelLoadError,
    load_folder,
    load_model,
    push_error_message,
    push_model,
)
from hdr.line_model import LineNet
from hdr.model import DigitNet
from tests.conftest import REPO
from tests.hub_server import HubServer

TOKEN = "hf_test_secret_token_123"
REPO_ID = "tester/digits"
LINES_REPO_ID = "user/lines"
needs_shipped_model = pytest.mark.skipif(not (SHIPPED_MODEL / "model.safetensors").is_file(),
                                         reason="the shipped model (checkpoints/hdr-mnist) is not trained yet")


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A running test hub; HF_ENDPOINT, HF_TOKEN and HF_HOME point at it and at tmp_path."""
    server = HubServer()
    # huggingface_hub reads HF_HUB_DISABLE_TELEMETRY once, at import; when it is off, building request headers
    # fetches an "agent harnesses" list from the import-time endpoint (huggingface.co): never at test time.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    # huggingface_hub also reads its default cache folder at import: pulls without cache_dir stay in tmp_path.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.stop()


def model_folder(path: Path, seed: int, widths=(8, 16), metrics: dict | None = None) -> Path:
    """Save a small randomly initialised model (different seeds predict differently) with a model card."""
    torch.manual_seed(seed)
    net = DigitNet(widths=list(widths), temperature=1.5, min_confidence=0.4)
    metrics = metrics or {"mnist_test_accuracy": 0.1 + seed / 100}
    net.save_pretrained(path, model_card_kwargs={"metrics": {k: v for k, v in metrics.items() if "realistic" not in k}})
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


@pytest.fixture(scope="module")
def number_image(data_root):
    """A handwritten number (MNIST test digits) that the shipped models read as 4096."""
    from bench.multidigit_set import render_number
    from hdr.synthetic import DigitPool

    return render_number("4096", "spaced", 12, DigitPool.from_mnist(data_root)).image


def same_weights(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    one, other = first.state_dict(), second.state_dict()
    return one.keys() == other.keys() and all(torch.equal(one[name], other[name]) for name in one)


def read_command(capsys, *args: str) -> tuple[int, str, str]:
    """``python -m hdr read ...`` in this process: exit status, stdout, stderr."""
    options = build_parser().parse_args(["read", *args])
    status = options.handler(options)
    output = capsys.readouterr()
    return status, output.out, output.err


def probabilities(net: DigitNet) -> torch.Tensor:
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return net.calibrated_probabilities(net(images))


def fresh_cache(tmp_path: Path, name: str = "cache") -> Path:
    return tmp_path / name


def test_push_then_pull_into_a_fresh_cache_gives_identical_predictions(hub, tmp_path, caplog):
    folder = model_folder(tmp_path / "model", seed=1,
                          metrics={"mnist_test_accuracy": 0.11, "realistic_accuracy": 0.87})
    commit = push_model(folder, REPO_ID, tag="v1")

    net, source = load_model(REPO_ID, cache_dir=fresh_cache(tmp_path))

    assert torch.equal(probabilities(net), probabilities(load_folder(folder)))
    assert (source.kind, source.repo_id, source.revision, source.commit, source.note) == ("hub", REPO_ID, "main", commit, "")
    assert source.describe() == f"hub: {REPO_ID} @ main (commit {commit[:7]})"
    assert net.temperature == 1.5 and not net.training
    card = hub.repos[REPO_ID].commits[commit]["README.md"].decode()
    assert "| realistic_accuracy | 0.87 |" in card and "| mnist_test_accuracy | 0.11 |" in card
    assert f"Bearer {TOKEN}" in hub.authorization  # the token from HF_TOKEN was used ...
    assert hub.cdn_requests == [None]  # weights came from the storage host, without the token
    assert TOKEN not in caplog.text and TOKEN not in json.dumps(source.to_dict())  # ... and never shown


def test_pull_by_tag_branch_and_commit_gets_the_right_model(hub, tmp_path):
    first = push_model(model_folder(tmp_path / "a", seed=1), REPO_ID, tag="v1")
    experiment = push_model(model_folder(tmp_path / "b", seed=2), REPO_ID, revision="experiment", tag="v2")
    latest = push_model(model_folder(tmp_path / "c", seed=3), REPO_ID)
    expected = {name: probabilities(load_folder(tmp_path / name)) for name in "abc"}
    cache = fresh_cache(tmp_path)

    for revision, folder, commit in [("v1", "a", first), ("experiment", "b", experiment), ("v2", "b", experiment),
                                     (None, "c", latest), ("main", "c", latest), (first, "a", first)]:
        net, source = load_model(REPO_ID, revision, cache_dir=cache)
        assert torch.equal(probabilities(net), expected[folder]), revision
        assert source.commit == commit and source.revision == (revision or "main")
    assert len({first, experiment, latest}) == 3


def test_a_newer_push_to_a_pulled_branch_is_picked_up(hub, tmp_path):
    cache = fresh_cache(tmp_path)
    push_model(model_folder(tmp_path / "a", seed=1), REPO_ID)
    assert load_model(REPO_ID, cache_dir=cache)[1].commit is not None
    newer = push_model(model_folder(tmp_path / "b", seed=2), REPO_ID)

    net, source = load_model(REPO_ID, cache_dir=cache)

    assert source.commit == newer and torch.equal(probabilities(net), probabilities(load_folder(tmp_path / "b")))


@needs_shipped_model
def test_hub_down_with_a_fresh_cache_serves_the_shipped_model_within_seconds(hub, tmp_path):
    push_model(model_folder(tmp_path / "model", seed=1), REPO_ID)
    hub.stop()

    started = time.perf_counter()
    net, source = load_model(REPO_ID, "v1", cache_dir=fresh_cache(tmp_path))
    seconds = time.perf_counter() - started

    assert seconds < 5  # huggingface_hub alone retries for ~23 s before giving up
    assert source.kind == "shipped" and source.path == str(SHIPPED_MODEL)
    assert "hub unreachable" in source.note and f"{REPO_ID} @ v1" in source.note and "shipped" in source.note
    assert source.describe().startswith("shipped model (checkpoints/hdr-mnist) — hub unreachable")
    assert torch.equal(probabilities(net), probabilities(load_folder(SHIPPED_MODEL)))


def test_hub_down_with_a_warm_cache_serves_the_cached_copy(hub, tmp_path):
    cache = fresh_cache(tmp_path)
    tagged = push_model(model_folder(tmp_path / "a", seed=1), REPO_ID, tag="v1")
    push_model(model_folder(tmp_path / "b", seed=2), REPO_ID)
    load_model(REPO_ID, "v1", cache_dir=cache)
    hub.stop()

    started = time.perf_counter()
    net, source = load_model(REPO_ID, "v1", cache_dir=cache)

    assert time.perf_counter() - started < 5
    assert source.kind == "hub" and source.commit == tagged and "cached copy" in source.note
    assert torch.equal(probabilities(net), probabilities(load_folder(tmp_path / "a")))


def test_failing_hub_serves_the_cached_copy(hub, tmp_path):
    cache = fresh_cache(tmp_path)
    commit = push_model(model_folder(tmp_path / "model", seed=1), REPO_ID)
    load_model(REPO_ID, cache_dir=cache)
    hub.mode = "failing"

    started = time.perf_counter()
    _, source = load_model(REPO_ID, cache_dir=cache)

    assert time.perf_counter() - started < 5
    assert source.commit == commit and source.note == "hub unreachable (HTTP 503), serving the cached copy"


@needs_shipped_model
def test_hanging_hub_falls_back_within_the_timeout(hub, tmp_path, monkeypatch):
    commit = push_model(model_folder(tmp_path / "model", seed=1), REPO_ID)
    warm = fresh_cache(tmp_path, "warm")
    load_model(REPO_ID, cache_dir=warm)
    hub.mode = "hanging"

    started = time.perf_counter()
    monkeypatch.setenv("HDR_HUB_TIMEOUT", "1.5")
    _, cold_source = load_model(REPO_ID, cache_dir=fresh_cache(tmp_path, "cold"))
    cold_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _, warm_source = load_model(REPO_ID, cache_dir=warm, timeout=1.5)
    warm_seconds = time.perf_counter() - started

    assert cold_seconds < 1.5 + 3 and warm_seconds < 1.5 + 3  # unbounded, it would wait for minutes
    # Our deadline and the HTTP client's read timeout are both 1.5 s: either may report it first.
    assert cold_source.kind == "shipped" and re.search(r"no answer within 1\.5 s|Timeout", cold_source.note)
    assert warm_source.kind == "hub" and warm_source.commit == commit and "cached copy" in warm_source.note


def test_a_pinned_commit_in_the_cache_is_served_without_the_hub(hub, tmp_path):
    cache = fresh_cache(tmp_path)
    commit = push_model(model_folder(tmp_path / "model", seed=1), REPO_ID)
    load_model(REPO_ID, commit, cache_dir=cache)
    hub.mode = "hanging"
    asked = len(hub.requests)

    _, source = load_model(REPO_ID, commit, cache_dir=cache)

    assert len(hub.requests) == asked
    assert source.kind == "hub" and source.commit == commit and source.note == ""


def test_corrupted_weights_on_the_hub_give_a_clear_error_naming_the_file(hub, tmp_path):
    push_model(model_folder(tmp_path / "model", seed=1), REPO_ID)
    hub.corrupt(REPO_ID, "model.safetensors")

    with pytest.raises(ModelLoadError, match=r"model\.safetensors is not a readable safetensors file"):
        load_model(REPO_ID, cache_dir=fresh_cache(tmp_path))


def test_config_that_does_not_match_the_weights_gives_a_clear_error(hub, tmp_path):
    folder = model_folder(tmp_path / "model", seed=1)
    push_model(folder, REPO_ID)
    wrong_widths = json.dumps({**json.loads((folder / "config.json").read_text()), "widths": [16, 32]}).encode()
    hub.add_files(REPO_ID, {"config.json": wrong_widths}, branch="wide")
    unknown_key = json.dumps({"widths": [8, 16], "layers": 5}).encode()
    hub.add_files(REPO_ID, {"config.json": unknown_key}, branch="odd")

    with pytest.raises(ModelLoadError, match=r"model\.safetensors does not match .*config\.json: .*size mismatch"):
        load_model(REPO_ID, "wide", cache_dir=fresh_cache(tmp_path))
    with pytest.raises(ModelLoadError, match=r"config\.json does not describe a DigitNet: .*layers"):
        load_model(REPO_ID, "odd", cache_dir=fresh_cache(tmp_path))


class _Trap:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


def test_a_repo_with_only_pickled_weights_is_refused_and_never_unpickled(hub, tmp_path):
    trap = tmp_path / "unpickled"
    config = json.dumps({"widths": [8, 16]}).encode()
    hub.add_files("tester/pickled", {"config.json": config, "pytorch_model.bin": pickle.dumps(_Trap(trap))})
    local = tmp_path / "local"
    local.mkdir()
    (local / "config.json").write_bytes(config)
    (local / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(trap)))

    with pytest.raises(ModelLoadError, match=r"has no model\.safetensors.*pickled weights are never loaded"):
        load_model("tester/pickled", cache_dir=fresh_cache(tmp_path))
    with pytest.raises(ModelLoadError, match=r"model\.safetensors not found \(found pytorch_model\.bin"):
        load_model(local)
    assert not trap.exists()
    assert not any(path.endswith("pytorch_model.bin") for _, path in hub.requests)


def test_unknown_repo_revision_and_private_repo_without_token(hub, tmp_path, monkeypatch):
    push_model(model_folder(tmp_path / "model", seed=1), "tester/secret", private=True)
    cache = fresh_cache(tmp_path)

    with pytest.raises(ModelLoadError, match="hub repo tester/nothing not found"):
        load_model("tester/nothing", cache_dir=cache)
    with pytest.raises(ModelLoadError, match="has no revision 'v9'"):
        load_model("tester/secret", "v9", cache_dir=cache)
    assert load_model("tester/secret", cache_dir=cache)[1].kind == "hub"
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(ModelLoadError, match="private and HF_TOKEN is missing"):
        load_model("tester/secret", cache_dir=fresh_cache(tmp_path, "other"))
    with pytest.raises(ModelLoadError, match="neither an existing folder nor a hub repo id"):
        load_model("./no/such/folder")
    with pytest.raises(ModelLoadError, match="neither an existing folder nor a hub repo id"):
        load_model(tmp_path / "missing")


def test_push_refuses_incomplete_or_broken_folders_before_touching_the_hub(hub, tmp_path):
    folder = model_folder(tmp_path / "model", seed=1)
    (folder / "README.md").unlink()
    with pytest.raises(ModelLoadError, match="lacks README.md"):
        push_model(folder, REPO_ID)
    broken = model_folder(tmp_path / "broken", seed=1)
    (broken / "model.safetensors").write_bytes(b"\0" * 100)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is not a readable safetensors file"):
        push_model(broken, REPO_ID)
    assert hub.requests == []


def test_push_without_token_or_hub_fails_with_a_clear_message(hub, tmp_path, monkeypatch):
    folder = model_folder(tmp_path / "model", seed=1)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(Exception) as refused:
        push_model(folder, REPO_ID)
    assert push_error_message(refused.value).startswith(
        f"the hub at {hub.url} refused the push with HTTP 401 (check HF_TOKEN")
    hub.stop()
    with pytest.raises(Exception) as unreachable:
        push_model(folder, REPO_ID)
    assert push_error_message(unreachable.value).startswith(f"cannot reach the hub at {hub.url} (ConnectError")


def test_push_command_line(hub, tmp_path):
    folder = model_folder(tmp_path / "model", seed=1)
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    result = subprocess.run([sys.executable, "-m", "hdr", "push", str(folder), "--repo", REPO_ID,
                             "--revision", "candidate", "--tag", "v3"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr[-2000:]
    repo = hub.repos[REPO_ID]
    commit = repo.tags["v3"]
    assert repo.branches["candidate"] == commit and commit in result.stdout
    assert "pytorch_model.bin" not in repo.commits[commit] and "model.safetensors" in repo.commits[commit]
    assert TOKEN not in result.stdout + result.stderr

    missing = subprocess.run([sys.executable, "-m", "hdr", "push", str(tmp_path / "nothing"), "--repo", REPO_ID],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and "lacks config.json" in missing.stderr and "Traceback" not in missing.stderr


def test_the_line_reader_is_pushed_with_the_command_line_and_pulled_by_the_recognizer(hub, tmp_path, capsys,
                                                                                    recognizer, number_image):
    pushed = subprocess.run([sys.executable, "-m", "hdr", "push", str(SHIPPED_LINE_READER), "--repo", LINES_REPO_ID,
                             "--tag", "v1"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=300)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    commit = hub.repos[LINES_REPO_ID].tags["v1"]
    assert commit in pushed.stdout and "model.safetensors" in hub.repos[LINES_REPO_ID].commits[commit]

    pulled = Recognizer.from_pretrained(line_reader=LINES_REPO_ID, line_reader_revision="v1")

    source = pulled.line_reader_source
    assert (source.kind, source.repo_id, source.revision, source.commit, source.note) == (
        "hub", LINES_REPO_ID, "v1", commit, "")
    assert source.describe() == f"hub: {LINES_REPO_ID} @ v1 (commit {commit[:7]})"
    assert pulled.source.kind == "shipped" and recognizer.line_reader_source.kind == "shipped"
    assert isinstance(pulled.line_reader, LineNet) and same_weights(pulled.line_reader, recognizer.line_reader)
    assert pulled.read(number_image).text == recognizer.read(number_image).text == "4096"

    image = tmp_path / "number.png"
    number_image.save(image)
    status, out, err = read_command(capsys, str(image), "--line-reader", LINES_REPO_ID, "--line-reader-revision", "v1")
    assert status == 0 and out.startswith(f"{image}: 4096 (") and err == ""


def test_hub_down_the_line_reader_falls_back_to_the_shipped_one_with_a_note(hub, tmp_path, capsys,
                                                                           recognizer, number_image):
    push_model(SHIPPED_LINE_READER, LINES_REPO_ID)
    hub.stop()

    started = time.perf_counter()
    pulled = Recognizer.from_pretrained(line_reader=LINES_REPO_ID)
    seconds = time.perf_counter() - started

    assert seconds < 5
    source = pulled.line_reader_source
    assert source.kind == "shipped" and source.path == str(SHIPPED_LINE_READER)
    assert f"hub unreachable for {LINES_REPO_ID} @ main" in source.note and "serving shipped model" in source.note
    assert source.describe().startswith("shipped model (checkpoints/hdr-lines) — hub unreachable")
    assert same_weights(pulled.line_reader, recognizer.line_reader)
    assert pulled.read(number_image).text == recognizer.read(number_image).text

    image = tmp_path / "number.png"
    number_image.save(image)
    status, out, err = read_command(capsys, str(image), "--line-reader", LINES_REPO_ID)
    assert status == 0 and out.startswith(f"{image}: 4096 ")
    assert err.startswith("hdr: line reader: shipped model (checkpoints/hdr-lines) — hub unreachable for user/lines")


def test_a_digit_model_is_not_taken_for_a_line_reader(hub, tmp_path):
    push_model(model_folder(tmp_path / "model", seed=1), REPO_ID)

    with pytest.raises(ModelLoadError, match=r"config\.json does not describe a LineNet"):
        load_model(REPO_ID, model_class=LineNet, cache_dir=fresh_cache(tmp_path))


@pytest.mark.skipif(not (REPO / "app.py").is_file(), reason="app.py (engineer C) is not there yet")
def test_the_app_serves_a_pulled_model_and_reports_repo_and_commit(hub, tmp_path):
    from gradio_client import Client

    from tests.app_server import running_app

    commit = push_model(model_folder(tmp_path / "model", seed=1), REPO_ID, tag="v3")
    push_model(model_folder(tmp_path / "newer", seed=2), REPO_ID)
    lines_commit = push_model(SHIPPED_LINE_READER, LINES_REPO_ID, tag="v1")

    with running_app(env={"HDR_MODEL": REPO_ID, "HDR_REVISION": "v3", "HDR_LINE_READER": LINES_REPO_ID,
                          "HDR_LINE_READER_REVISION": "v1", "HDR_FEEDBACK_DIR": str(tmp_path / "feedback")}) as app:
        info = Client(app.url, verbose=False).predict(api_name="/model_info")

    assert info["kind"] == "hub" and info["repo_id"] == REPO_ID and info["revision"] == "v3"
    assert info["commit"] == commit and info["note"] == ""
    assert info["description"] == f"hub: {REPO_ID} @ v3 (commit {commit[:7]})"
    lines = info["line_reader"]
    assert (lines["kind"], lines["repo_id"], lines["revision"]) == ("hub", LINES_REPO_ID, "v1")
    assert lines["commit"] == lines_commit and lines["note"] == ""
    assert lines["description"] == f"hub: {LINES_REPO_ID} @ v1 (commit {lines_commit[:7]})"
