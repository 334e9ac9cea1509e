"""Seconds from process start to a loaded model (and to a serving app) with the model hub up, down or hanging.

    python bench/bench_hub_outage.py               # 3 runs per case, app included
    python bench/bench_hub_outage.py --repeats 1 --no-app

A loopback Hub-compatible server (tests/hub_server.py) holds the pushed model (the shipped one when it
exists). Each case starts a fresh Python process that calls ``hdr.hub.load_model(repo, "v1")`` (or
starts ``app.py`` with ``HDR_MODEL``/``HDR_REVISION``), with a cold (empty) or warm huggingface_hub
cache. "down": nothing listens on the hub's port; "hanging": the hub accepts connections and never
answers. For reference, a bare ``huggingface_hub.hf_hub_download`` of the same file is timed too (capped
at 90 s). Columns: seconds from process start, and seconds of the call itself (``load_model`` or
``hf_hub_download``). Prints a table and writes ``bench/results/hub_outage.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"  # read at import: keeps huggingface_hub from calling huggingface.co

from hdr.hub import SHIPPED_MODEL, hub_timeout, load_model, push_model  # noqa: E402
from hdr.model import DigitNet  # noqa: E402
from tests.hub_server import HubServer  # noqa: E402

REPO_ID, REVISION = "bench/digits", "v1"
RESULTS = REPO / "bench" / "results" / "hub_outage.json"
CHILD = """
import json, sys, time
from hdr.hub import load_model
started = time.perf_counter()
_, source = load_model(sys.argv[1], sys.argv[2])
print(json.dumps({**source.to_dict(), "load_model_s": time.perf_counter() - started}))
"""

# Reference: what huggingface_hub alone does for the same file, without hdr's deadline and fallbacks.
PLAIN_CHILD = """
import sys, time
from huggingface_hub import hf_hub_download
started = time.perf_counter()
try:
    hf_hub_download(sys.argv[1], "config.json", revision=sys.argv[2])
finally:
    print(f"hf_hub_download_s={time.perf_counter() - started}", flush=True)
"""
PLAIN_LIMIT_S = 90


def model_to_push(workdir: Path) -> tuple[Path, str]:
    """The shipped model folder, or a freshly initialised one when none is trained yet."""
    if (SHIPPED_MODEL / "model.safetensors").is_file():
        return SHIPPED_MODEL, "shipped model"
    folder = workdir / "model"
    DigitNet().save_pretrained(folder, model_card_kwargs={"metrics": {}})
    return folder, "untrained DigitNet (no shipped model yet)"


def time_loader(env: dict) -> tuple[float, dict]:
    """Seconds from starting ``python`` to ``load_model`` returning, and the ModelSource it reported."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", CHILD, REPO_ID, REVISION], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        return seconds, {"kind": "error", "note": result.stderr.strip().splitlines()[-1]}
    return seconds, json.loads(result.stdout.strip().splitlines()[-1])


def time_plain_client(env: dict) -> tuple[float, dict]:
    """Seconds a bare ``hf_hub_download`` takes to give up (capped at PLAIN_LIMIT_S), for reference."""
    started = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-c", PLAIN_CHILD, REPO_ID, REVISION], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=PLAIN_LIMIT_S)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - started, {"note": f"still waiting after {PLAIN_LIMIT_S} s (killed)"}
    call = next(float(line.split("=")[1]) for line in result.stdout.splitlines() if line.startswith("hf_hub_download_s="))
    error = result.stderr.strip().splitlines()[-1][:100] if result.returncode else "ok"
    return time.perf_counter() - started, {"load_model_s": call, "note": error}


def time_app(env: dict) -> tuple[float, dict]:
    """Seconds from starting ``python app.py`` to its serving ``/config``, and its ``/model_info``."""
    from gradio_client import Client

    from tests.app_server import running_app

    started = time.perf_counter()
    with running_app(env=env, timeout=300) as app:
        seconds = time.perf_counter() - started
        info = Client(app.url, verbose=False).predict(api_name="/model_info")
    return seconds, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (the median is reported)")
    parser.add_argument("--no-app", action="store_true", help="skip the app start-up cases")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop started apps when stopped
    with_app = not args.no_app and (REPO / "app.py").is_file()

    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    hub = HubServer()
    base_env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                "HDR_MODEL": REPO_ID, "HDR_REVISION": REVISION, "HDR_FEEDBACK_DIR": str(work / "feedback"),
                "PYTHONPATH": str(REPO)}
    base_env.pop("HF_TOKEN", None)
    os.environ.update(HF_ENDPOINT=hub.url, HF_TOKEN="bench-token")  # the test hub wants a token for writes
    folder, pushed = model_to_push(work)
    push_model(folder, REPO_ID, tag=REVISION)
    warm = work / "warm-cache"
    load_model(REPO_ID, REVISION, cache_dir=warm)

    rows, load_before = [], os.getloadavg()[0]

    def measure(state: str, cache: str, what: str, repeats: int) -> None:
        runs, calls, source = [], [], {}
        for index in range(repeats):
            cache_dir = warm if cache == "warm" else work / f"cold-{state}-{what}-{index}"
            env = {**base_env, "HF_HUB_CACHE": str(cache_dir)}
            timer = {"app serving": time_app, "model loaded": time_loader}.get(what, time_plain_client)
            seconds, source = timer(env)
            runs.append(round(seconds, 2))
            if "load_model_s" in source:
                calls.append(round(source["load_model_s"], 2))
        served = source.get("description", source.get("note", "?"))
        call = statistics.median(calls) if calls else None
        rows.append({"hub": state, "cache": cache, "until": what, "median_s": statistics.median(runs),
                     "runs_s": runs, "call_median_s": call, "served": source.get("kind"),
                     "commit": source.get("commit"), "description": served})
        call_text = f"{call:7.2f} s" if call is not None else " " * 9
        print(f"{state:8} {cache:5} {what:21} {statistics.median(runs):7.2f} s  {call_text}  {served}", flush=True)

    print(f"{'hub':8} {'cache':5} {'until':21} {'median':>9}  {'the call':>9}  served", flush=True)
    for state in ("up", "hanging", "down"):
        if state == "hanging":
            hub.mode = "hanging"
        elif state == "down":
            hub.stop()
        for cache in ("cold", "warm"):
            measure(state, cache, "model loaded", args.repeats)
            if with_app:
                measure(state, cache, "app serving", 1)
        if state != "up":
            measure(state, "cold", "bare hf_hub_download", 1)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "seconds from process start to a loaded model / serving app, hub up, down or hanging",
        "command": "python " + " ".join(sys.argv),
        "pushed_model": pushed,
        "load_timeout_s": hub_timeout(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_1min_before_after": [load_before, os.getloadavg()[0]],
        "rows": rows,
    }, indent=2) + "\n")
    print(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
