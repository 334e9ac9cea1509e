"""Where models come from: the shipped folder, a local folder or a Hugging Face model hub.

Both kinds of model — the digit classifier (:class:`DigitNet`, shipped in ``checkpoints/hdr-mnist``) and
the line reader (:class:`LineNet`, shipped in ``checkpoints/hdr-lines``) — go through the same code:
:func:`load_model` takes the model class, and falls back to that class's shipped folder (``SHIPPED``).

Only ``config.json`` + ``model.safetensors`` are ever read (never a pickle), with a strict match
between the two. Pulling from a hub never blocks for long: the network part runs under a
deadline, and when the hub is down, hanging or failing, the cached copy of the requested revision
is served, or else the shipped model; :class:`ModelSource` records what happened.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx2
import safetensors.torch
import torch
from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hdr.line_model import LineNet
from hdr.model import DigitNet

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED_MODEL = CHECKPOINTS / "hdr-mnist"  # the digit classifier (DigitNet)
SHIPPED_LINE_READER = CHECKPOINTS / "hdr-lines"  # the line reader of whole numbers (LineNet)
SHIPPED = {DigitNet: SHIPPED_MODEL, LineNet: SHIPPED_LINE_READER}  # the shipped folder of each kind of model
CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "README.md"
DEFAULT_TIMEOUT = 4.0  # seconds allowed for the network part of a hub pull, unless HDR_HUB_TIMEOUT says otherwise
PICKLE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl"]
COMMIT_ID = re.compile(r"[0-9a-f]{40}")
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message names the file or repo at fault."""


class HubUnavailable(Exception):
    """The hub could not be reached, answered too slowly or failed on its side."""


@dataclass
class ModelSource:
    """What model is being served and where it came from.

    ``kind`` is "shipped", "local" or "hub"; ``commit`` is the hub commit id actually loaded;
    ``note`` says what went wrong when the requested model could not be served as asked.
    """

    kind: str
    repo_id: str | None
    revision: str | None
    commit: str | None
    path: str
    note: str = ""

    def describe(self) -> str:
        """One line for people, e.g. ``hub: user/name @ v3 (commit abc1234)``."""
        if self.kind == "hub":
            text = f"hub: {self.repo_id} @ {self.revision or 'main'} (commit {(self.commit or '?')[:7]})"
        elif self.kind == "shipped":
            text = f"shipped model ({_display_path(self.path)})"
        else:
            text = f"local folder {self.path}"
        return f"{text} — {self.note}" if self.note else text

    def to_dict(self) -> dict:
        """JSON-safe dictionary, with the one-line description under ``description``."""
        return {**asdict(self), "description": self.describe()}


def load_model(source: str | os.PathLike | None = None, revision: str | None = None,
               timeout: float | None = None, cache_dir: str | os.PathLike | None = None,
               model_class: type[torch.nn.Module] = DigitNet) -> tuple[torch.nn.Module, ModelSource]:
    """Load a model in eval mode and describe where it came from.

    Args:
        source: ``None`` for the shipped model, an existing local folder, or a hub repo id ("user/name").
        revision: hub branch, tag or commit id (default: ``main``); ignored for folders.
        timeout: seconds allowed for talking to the hub before falling back to the cache or shipped model
            (default: env ``HDR_HUB_TIMEOUT``, else 4).
        cache_dir: huggingface_hub cache folder (default: huggingface_hub's, from ``HF_HOME``/``HF_HUB_CACHE``).
        model_class: the kind of model, built from ``config.json``: :class:`DigitNet` (default) or :class:`LineNet`.
            Its shipped folder (``SHIPPED``) is served for ``None``, and when the hub is out and nothing is cached.

    Raises:
        ModelLoadError: missing or invalid files, unknown repo/revision, or a repo without safetensors weights.
    """
    shipped = SHIPPED[model_class]
    if source is None:
        return load_folder(_shipped_folder(shipped), model_class), _shipped_source(shipped)
    folder = Path(source).expanduser()
    if folder.is_dir():
        return load_folder(folder, model_class), ModelSource("local", None, None, None, str(folder.resolve()))
    repo_id = str(source)
    if isinstance(source, os.PathLike) or not REPO_ID.fullmatch(repo_id):
        raise ModelLoadError(f"{repo_id!r} is neither an existing folder nor a hub repo id like 'user/name'")
    timeout = hub_timeout() if timeout is None else timeout
    return _load_from_hub(repo_id, revision, timeout, cache_dir, model_class, shipped)


def load_folder(folder: str | os.PathLike, model_class: type[torch.nn.Module] = DigitNet) -> torch.nn.Module:
    """Build a ``model_class`` (:class:`DigitNet` by default) from ``config.json`` and load
    ``model.safetensors`` into it strictly."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not weights_path.is_file():
        pickles = sorted(path.name for pattern in PICKLE_PATTERNS for path in folder.glob(pattern))
        hint = f" (found {', '.join(pickles)}: pickled weights are never loaded)" if pickles else ""
        raise ModelLoadError(f"{weights_path} not found{hint}")
    try:
        config = json.loads(config_path.read_text())
        net = model_class(**config)
    except Exception as error:  # missing file, bad JSON, unknown keys or impossible values
        raise ModelLoadError(f"{config_path} does not describe a {model_class.__name__}: {error}") from error
    try:
        state = safetensors.torch.load_file(weights_path)
    except Exception as error:  # safetensors raises its own error type for damaged files
        raise ModelLoadError(f"{weights_path} is not a readable safetensors file: {error}") from error
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        details = " ".join(str(error).split())[:400]
        raise ModelLoadError(f"{weights_path} does not match {config_path}: {details}") from error
    return net.eval()


def push_model(folder: str | os.PathLike, repo_id: str, revision: str | None = None, tag: str | None = None,
               private: bool = False, commit_message: str | None = None) -> str:
    """Upload a model folder to a hub repo and return the commit id.

    The folder must hold ``config.json``, ``model.safetensors`` and ``README.md`` and load cleanly, as a
    digit model or a line reader (see :func:`model_class_of`).
    The repo is created if needed, the branch ``revision`` too (from ``main``), and ``tag`` is put
    on the new commit. Scalar metrics in ``metrics.json`` that the model card's table lacks (for
    instance the realistic-set accuracy) are added to it. Pickled files are not uploaded.
    """
    folder = Path(folder)
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE) if not (folder / name).is_file()]
    if missing:
        raise ModelLoadError(f"{folder} lacks {', '.join(missing)}; export a model with train.py first")
    load_folder(folder, model_class_of(folder))
    api = HfApi(endpoint=hub_endpoint())
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision and revision != constants.DEFAULT_REVISION:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        shutil.copytree(folder, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*PICKLE_PATTERNS, ".*"))
        card = Path(staging) / CARD_FILE
        card.write_text(card_with_metrics(card.read_text(), Path(staging) / "metrics.json"))
        commit = api.upload_folder(repo_id=repo_id, folder_path=staging, revision=revision,
                                   commit_message=commit_message or f"Upload hdr model from {folder.name}")
    if tag:
        api.create_tag(repo_id, tag=tag, revision=commit.oid)
    return commit.oid


def model_class_of(folder: str | os.PathLike) -> type[torch.nn.Module]:
    """The kind of model a folder holds, from its ``config.json``: a line reader's config has ``context``
    (the digit classifier's has ``num_classes`` instead); :class:`DigitNet` when it cannot be read."""
    try:
        config = json.loads((Path(folder) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return DigitNet  # load_folder then reports what is wrong with the file
    return LineNet if isinstance(config, dict) and "context" in config else DigitNet


def push_error_message(error: Exception) -> str:
    """A one-line explanation of why a push failed (never includes the token)."""
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        status = error.response.status_code
        hint = " (check HF_TOKEN and that you may write to this repo)" if status in (401, 403, 404) else ""
        return f"the hub at {hub_endpoint()} refused the push with HTTP {status}{hint}: {str(error).splitlines()[0]}"
    if isinstance(error, (httpx2.TransportError, OSError)) and not isinstance(error, ModelLoadError):
        return f"cannot reach the hub at {hub_endpoint()} ({type(error).__name__}: {error})"
    return str(error)


def card_with_metrics(card: str, metrics_path: Path) -> str:
    """The model card whose metrics table shows each scalar metric of ``metrics_path`` as it is there: rows the
    table lacks are added, rows with another value are updated."""
    if not metrics_path.is_file():
        return card
    metrics = json.loads(metrics_path.read_text())
    lines = card.splitlines()
    start = next((index for index, line in enumerate(lines) if line.startswith("| metric | value |")), None)
    if start is None:
        return card
    end = start
    while end + 1 < len(lines) and lines[end + 1].startswith("|"):
        end += 1
    rows = {name: f"| {name} | {value} |" for name, value in metrics.items() if isinstance(value, (int, float, str))}
    for index in range(start, end + 1):
        lines[index] = rows.pop(lines[index].split("|")[1].strip(), lines[index])
    lines[end + 1:end + 1] = rows.values()
    return "\n".join(lines) + "\n"


def hub_endpoint() -> str:
    """The hub URL: ``HF_ENDPOINT`` as huggingface_hub defines it, read at call time."""
    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_timeout() -> float:
    """Seconds a hub pull may spend on the network: ``HDR_HUB_TIMEOUT`` if it is a positive number, else 4."""
    try:
        seconds = float(os.environ.get("HDR_HUB_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT
    return seconds if seconds > 0 else DEFAULT_TIMEOUT


def _shipped_folder(shipped: Path) -> Path:
    if not (shipped / WEIGHTS_FILE).is_file():
        raise ModelLoadError(f"no shipped model in {shipped}: train one with train.py and export it there "
                             f"(`--export_dir {_display_path(str(shipped))}`, see README, Training)")
    return shipped


def _shipped_source(shipped: Path, note: str = "") -> ModelSource:
    return ModelSource("shipped", None, None, None, str(shipped), note)


def _display_path(path: str) -> str:
    try:
        return str(Path(path).relative_to(CHECKPOINTS.parent))
    except ValueError:
        return path


def _load_from_hub(repo_id: str, revision: str | None, timeout: float, cache_dir,
                   model_class: type[torch.nn.Module], shipped: Path) -> tuple[torch.nn.Module, ModelSource]:
    """Newest files of ``revision`` from the hub, else the cached copy, else the shipped model."""

    def snapshot(folder: Path, note: str) -> tuple[torch.nn.Module, ModelSource]:
        commit = folder.name  # huggingface_hub's cache keeps each commit in snapshots/<commit id>/
        source = ModelSource("hub", repo_id, revision or constants.DEFAULT_REVISION, commit, str(folder), note)
        return load_folder(folder, model_class), source

    if revision and COMMIT_ID.fullmatch(revision):  # a commit never changes: a cached copy is as good as the hub
        try:
            return snapshot(_fetch(repo_id, revision, cache_dir, offline=True), "")
        except LocalEntryNotFoundError:
            pass
    try:
        folder = _with_deadline(lambda: _fetch(repo_id, revision, cache_dir, offline=False, timeout=timeout), timeout)
        return snapshot(folder, "")
    except HubUnavailable as outage:
        reason = str(outage)
    try:
        folder = _fetch(repo_id, revision, cache_dir, offline=True)
        return snapshot(folder, f"hub unreachable ({reason}), serving the cached copy")
    except LocalEntryNotFoundError:
        pass
    wanted = f"{repo_id} @ {revision or constants.DEFAULT_REVISION}"
    try:
        net = load_folder(_shipped_folder(shipped), model_class)
    except ModelLoadError as error:
        raise ModelLoadError(f"hub unreachable for {wanted} ({reason}), nothing cached, and {error}") from None
    return net, _shipped_source(shipped, f"hub unreachable for {wanted} ({reason}), serving shipped model")


def _fetch(repo_id: str, revision: str | None, cache_dir, offline: bool, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Folder holding config + weights of one commit; network errors become :class:`HubUnavailable`.

    Online, the revision is first resolved with one quick request, so that a hub outage is noticed
    (huggingface_hub would otherwise silently serve a possibly stale cached copy); the weights are
    then taken from the same commit as the config.
    """
    options = dict(cache_dir=cache_dir, endpoint=hub_endpoint(), library_name="hdr", local_files_only=offline)
    try:
        if not offline:
            url = hf_hub_url(repo_id, CONFIG_FILE, revision=revision, endpoint=options["endpoint"])
            get_hf_file_metadata(url, timeout=timeout, endpoint=options["endpoint"])
        config = Path(hf_hub_download(repo_id, CONFIG_FILE, revision=revision, etag_timeout=timeout, **options))
        commit = config.parent.name
        hf_hub_download(repo_id, WEIGHTS_FILE, revision=commit, etag_timeout=timeout, **options)
        return config.parent
    except RepositoryNotFoundError as error:
        raise ModelLoadError(f"hub repo {repo_id} not found (or private and HF_TOKEN is missing)") from error
    except RevisionNotFoundError as error:
        raise ModelLoadError(f"hub repo {repo_id} has no revision {revision!r}") from error
    except RemoteEntryNotFoundError as error:
        raise ModelLoadError(f"hub repo {repo_id} @ {revision or 'main'} has no {_missing_name(error)}; hdr loads only "
                             f"{CONFIG_FILE} + {WEIGHTS_FILE} (pickled weights are never loaded)") from error
    except LocalEntryNotFoundError:
        if offline:
            raise
        raise HubUnavailable("no answer") from None
    except (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError) as error:
        raise HubUnavailable(type(error).__name__) from None
    except OfflineModeIsEnabled:
        raise HubUnavailable("HF_HUB_OFFLINE is set") from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        if status in (401, 403):
            raise ModelLoadError(f"hub refused access to {repo_id} (HTTP {status}): check HF_TOKEN") from error
        raise HubUnavailable(f"HTTP {status}") from None


def _missing_name(error: RemoteEntryNotFoundError) -> str:
    url = str(error.response.url) if getattr(error, "response", None) is not None else ""
    return CONFIG_FILE if url.endswith(CONFIG_FILE) else WEIGHTS_FILE


def _with_deadline(function, seconds: float):
    """Run ``function`` in a daemon thread; :class:`HubUnavailable` if it is not done within ``seconds``.

    A stuck call is abandoned (it cannot be interrupted), which keeps a hanging hub from blocking.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed over to the calling thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name="hdr-hub-fetch", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise HubUnavailable(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
