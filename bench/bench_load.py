"""Load benchmark of the app's HTTP APIs: many concurrent clients sending real digit images.

    python -m bench.bench_load                       # both APIs: 1, 16, 64 clients, then 10,000 requests for the RSS
    python -m bench.bench_load --endpoints rest --levels 1 4 --requests 50 --soak 200 --max-seconds 10  # a quick look
    python -m bench.bench_load --endpoints gradio --files-per-request 16   # 16 images per /predict_batch call

For each endpoint the app (``app.py``) is started afresh in a subprocess on 127.0.0.1. Each simulated
client is an asyncio task that sends a request, and the next one as soon as it has the answer:

* ``gradio``: what ``gradio_client`` does for one prediction: upload the image (``POST /gradio_api/upload``),
  start the call (``POST /gradio_api/call/predict``) and read the answer from its event stream
  (``GET /gradio_api/call/predict/{event_id}``). A request's latency covers all three steps.
* ``rest``: one ``POST /api/v1/predict`` with the PNG as the body.

Images are MNIST test digits as 112×112 PNGs of dark ink on white paper, like scans.
For each level of concurrency it reports requests/s, predictions/s, p50/p95/p99 latency, errors (anything
but a completed answer) and wrong digits; then it measures the resident memory of the server (and of its
preprocessing workers) before and after ``--soak`` requests at the highest level. The table is printed and
saved to ``bench/results/load.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script or with -m

from hdr import mnist  # noqa: E402
from tests.app_server import APP, RunningApp, pss_bytes, rss_bytes, running_app  # noqa: E402

DATA_ROOT = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results" / "load.json"
SCAN_SIZE = 112
REST_PATH = "/api/v1/predict"


@dataclass
class Level:
    """What one level of concurrency measured."""

    clients: int
    files_per_request: int = 1
    requests: int = 0
    predictions: int = 0
    errors: int = 0
    wrong_digits: int = 0
    seconds: float = 0.0
    server_cpu_seconds: float = 0.0  # the app and its workers
    client_cpu_seconds: float = 0.0  # this benchmark's clients
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    error_examples: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-friendly figures (latencies of successful requests only)."""
        latencies = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {
            "clients": self.clients, "files_per_request": self.files_per_request, "requests": self.requests,
            "predictions": self.predictions, "errors": self.errors,
            "wrong_digits": self.wrong_digits, "seconds": round(self.seconds, 2),
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "predictions_per_s": round(self.predictions / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(float(np.percentile(latencies, 50)), 1),
            "p95_ms": round(float(np.percentile(latencies, 95)), 1),
            "p99_ms": round(float(np.percentile(latencies, 99)), 1),
            "server_cpu_ms_per_prediction": round(1000 * self.server_cpu_seconds / max(self.predictions, 1), 2),
            "client_cpu_ms_per_prediction": round(1000 * self.client_cpu_seconds / max(self.predictions, 1), 2),
            "max_ms": round(float(latencies.max()), 1),
            "error_examples": self.error_examples[:5],
        }


def digit_scans(count: int) -> list[tuple[bytes, int]]:
    """The first ``count`` MNIST test digits as PNG scans (dark ink on white, 112×112) with their labels."""
    images, labels = mnist.load(DATA_ROOT, train=False)
    scans = []
    for image, label in zip(images[:count].numpy(), labels[:count].tolist()):
        paper = Image.fromarray(255 - image).resize((SCAN_SIZE, SCAN_SIZE), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        paper.save(buffer, format="PNG")
        scans.append((buffer.getvalue(), label))
    return scans


async def predict_gradio(session: aiohttp.ClientSession, url: str, pngs: list[bytes]) -> list[dict]:
    """Predictions through the Gradio HTTP API, as ``gradio_client`` makes them; one answer dict per image.

    One image goes to ``/predict``; several go, uploaded together, to ``/predict_batch`` in one call.
    """
    form = aiohttp.FormData()
    for number, png in enumerate(pngs):
        form.add_field("files", png, filename=f"digit{number}.png", content_type="image/png")
    async with session.post(f"{url}/gradio_api/upload", data=form) as response:
        response.raise_for_status()
        files = [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in await response.json()]
    endpoint = "predict" if len(files) == 1 else "predict_batch"
    body = {"data": [files[0] if len(files) == 1 else files]}
    async with session.post(f"{url}/gradio_api/call/{endpoint}", json=body) as response:
        response.raise_for_status()
        event_id = (await response.json())["event_id"]
    async with session.get(f"{url}/gradio_api/call/{endpoint}/{event_id}") as response:
        response.raise_for_status()
        event = None
        async for raw_line in response.content:
            line = raw_line.decode().strip()
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = line.removeprefix("data:").strip()
                if event == "error":
                    raise RuntimeError(f"the app answered with an error: {data[:200]}")
                answer = json.loads(data)[0]
                return [answer] if len(files) == 1 else answer
    raise RuntimeError("the event stream ended without an answer")


async def predict_rest(session: aiohttp.ClientSession, url: str, pngs: list[bytes]) -> list[dict]:
    """One prediction through the app's REST route: the PNG as the body of one request."""
    (png,) = pngs
    async with session.post(url + REST_PATH, data=png, headers={"Content-Type": "image/png"}) as response:
        answer = await response.json()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {answer.get('message')}")
        return [answer]


ENDPOINTS = {
    "gradio": (predict_gradio, "Gradio API /predict, or /predict_batch for several files (upload + call + event "
                               "stream per request)"),
    "rest": (predict_rest, f"POST {REST_PATH} (one HTTP request per image)"),
}


async def run_level(send, url: str, scans: list[tuple[bytes, int]], clients: int, requests: int,
                    max_seconds: float, files_per_request: int = 1) -> Level:
    """``clients`` concurrent clients share ``requests`` requests made with ``send``, stopping after ``max_seconds``."""
    level = Level(clients, files_per_request)
    issued = 0
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        deadline = start + max_seconds

        async def client() -> None:
            nonlocal issued
            while issued < requests and time.perf_counter() < deadline:
                first = issued * files_per_request
                batch = [scans[index % len(scans)] for index in range(first, first + files_per_request)]
                issued += 1
                sent = time.perf_counter()
                try:
                    answers = await send(session, url, [png for png, _ in batch])
                except Exception as error:  # counted and reported, never fatal
                    level.errors += 1
                    level.error_examples.append(f"{type(error).__name__}: {error}"[:300])
                else:
                    level.latencies_ms.append((time.perf_counter() - sent) * 1000)
                    level.predictions += len(answers)
                    level.wrong_digits += sum(answer.get("digit") != label
                                              for answer, (_, label) in zip(answers, batch, strict=True))
                level.requests += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        level.seconds = time.perf_counter() - start
    return level


def print_table(runs: list[dict]) -> None:
    """The results for people."""
    print(f"{'endpoint':>8} {'clients':>7} {'files/req':>9} {'requests':>8} {'req/s':>7} {'pred/s':>7} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'wrong':>5} {'server CPU ms/pred':>18} {'client':>6}")
    for run in runs:
        for row in run["levels"]:
            print(f"{run['endpoint']:>8} {row['clients']:>7} {row['files_per_request']:>9} {row['requests']:>8} "
                  f"{row['requests_per_s']:>7} {row['predictions_per_s']:>7} {row['p50_ms']:>7} "
                  f"{row['p95_ms']:>7} {row['p99_ms']:>7} {row['errors']:>6} {row['wrong_digits']:>5} "
                  f"{row['server_cpu_ms_per_prediction']:>18} {row['client_cpu_ms_per_prediction']:>6}")
    for run in runs:
        memory = run["memory"]
        print(f"{run['endpoint']}: server RSS {memory['rss_before_mb']} MB before, {memory['rss_after_mb']} MB after "
              f"{memory['soak_requests']} requests ({memory['soak_errors']} errors); its {memory['workers']} workers "
              f"{memory['workers_rss_before_mb']} / {memory['workers_rss_after_mb']} MB; PSS of them all "
              f"{memory['total_pss_before_mb']} / {memory['total_pss_after_mb']} MB; "
              f"{memory['uploaded_files_kept']} uploaded files ({memory['uploaded_mb_kept']} MB) left on disk")


def memory_mb(app: RunningApp) -> dict:
    """Resident memory of the server and, summed, of its workers (forked: most of their pages are shared with
    it), and the PSS of them all (shared pages counted once)."""
    workers = app.worker_pids()
    pids = [app.process.pid, *workers]
    return {"rss_mb": round(app.rss_bytes() / 2**20, 1), "workers": len(workers),
            "workers_rss_mb": round(sum(rss_bytes(pid) for pid in workers) / 2**20, 1),
            "total_pss_mb": round(sum(pss_bytes(pid) for pid in pids) / 2**20, 1)}


async def benchmark(options: argparse.Namespace, endpoint: str, scans: list[tuple[bytes, int]]) -> dict:
    """Start the app, warm it up, run every level and the memory soak against ``endpoint``; return the results."""
    send, description = ENDPOINTS[endpoint]
    uploads = Path(tempfile.mkdtemp(prefix="hdr-load-uploads-"))  # Gradio keeps every uploaded file here
    environment = {"GRADIO_TEMP_DIR": str(uploads), "PYTHONPATH": str(REPO),  # PYTHONPATH: for --app copies
                   **dict(setting.split("=", 1) for setting in options.env)}
    with running_app(options.app, log=options.server_log, env=environment) as app:
        warm_up = await run_level(send, app.url, scans, 4, 40, 120)
        if warm_up.errors:
            raise SystemExit(f"the app fails to answer: {warm_up.error_examples[:3]}")
        levels = []
        for clients in options.levels:
            server_cpu, client_cpu = app.cpu_seconds(), time.process_time()
            level = await run_level(send, app.url, scans, clients, options.requests, options.max_seconds,
                                    options.files_per_request)
            level.server_cpu_seconds = app.cpu_seconds() - server_cpu
            level.client_cpu_seconds = time.process_time() - client_cpu
            levels.append(level.summary())
            print(f"  {endpoint}, {clients} clients: {levels[-1]['predictions_per_s']} predictions/s", flush=True)
        before = memory_mb(app)
        soak = await run_level(send, app.url, scans, max(options.levels), options.soak, options.soak_max_seconds,
                               options.files_per_request)
        after = memory_mb(app)
        upload_files = [path for path in uploads.rglob("*") if path.is_file()]
        upload_mb = sum(path.stat().st_size for path in upload_files) / 2**20
    shutil.rmtree(uploads, ignore_errors=True)
    memory = {
        "soak_clients": soak.clients, "soak_requests": soak.requests, "soak_errors": soak.errors,
        "soak_predictions": soak.predictions, "soak_requests_per_s": soak.summary()["requests_per_s"],
        "rss_before_mb": before["rss_mb"], "rss_after_mb": after["rss_mb"], "workers": after["workers"],
        "workers_rss_before_mb": before["workers_rss_mb"], "workers_rss_after_mb": after["workers_rss_mb"],
        "total_pss_before_mb": before["total_pss_mb"], "total_pss_after_mb": after["total_pss_mb"],
        "uploaded_files_kept": len(upload_files), "uploaded_mb_kept": round(upload_mb, 2),
    }
    return {"endpoint": endpoint, "description": description, "levels": levels, "memory": memory}


async def run_all(options: argparse.Namespace) -> dict:
    """Every endpoint of ``--endpoints``, one after another, each with a fresh app."""
    scans = digit_scans(options.images)
    return {
        "command": "python -m bench.bench_load " + " ".join(sys.argv[1:]),
        "app": str(options.app),
        "app_environment": options.env,
        "images": f"{len(scans)} MNIST test digits as {SCAN_SIZE}x{SCAN_SIZE} PNG scans",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
        "runs": [await benchmark(options, endpoint, scans) for endpoint in options.endpoints],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", nargs="+", choices=list(ENDPOINTS), default=list(ENDPOINTS),
                        help="the APIs to load: gradio (gradio_client's protocol), rest (POST /api/v1/predict)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 16, 64], help="concurrent clients per level")
    parser.add_argument("--requests", type=int, default=3000, help="requests per level at most")
    parser.add_argument("--max-seconds", type=float, default=30, help="time per level at most")
    parser.add_argument("--soak", type=int, default=10_000, help="requests between the two RSS readings")
    parser.add_argument("--soak-max-seconds", type=float, default=300, help="time for the soak at most")
    parser.add_argument("--images", type=int, default=500, help="distinct test digits to send")
    parser.add_argument("--files-per-request", type=int, default=1,
                        help="images per request (gradio only): 1 uses /predict, more use /predict_batch")
    parser.add_argument("--app", type=Path, default=APP, help="the app to load (default: app.py; or a variant)")
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="extra environment of the app, e.g. GRADIO_DEFAULT_CONCURRENCY_LIMIT=2")
    parser.add_argument("--server-log", type=Path, default=None, help="write the app's output here")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    options = parser.parse_args(argv)
    if options.files_per_request > 1 and "rest" in options.endpoints:
        parser.error("--files-per-request applies to --endpoints gradio only")
    results = asyncio.run(run_all(options))
    print_table(results["runs"])
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {options.output}")


if __name__ == "__main__":
    main()
