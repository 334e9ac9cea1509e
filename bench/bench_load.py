"""Load benchmark of the app's HTTP API: many concurrent clients sending real digit images.

    python -m bench.bench_load                       # 1, 16, 64 clients, then 10,000 requests for the RSS
    python -m bench.bench_load --levels 1 4 --requests 50 --soak 200 --max-seconds 10   # a quick look
    python -m bench.bench_load --files-per-request 16    # clients that send 16 images per /predict_batch call

The app (``app.py``) is started in a subprocess on 127.0.0.1. Each simulated client is an asyncio task
that does what ``gradio_client`` does for one prediction: upload the image (``POST /gradio_api/upload``),
start the call (``POST /gradio_api/call/predict``) and read the answer from its event stream
(``GET /gradio_api/call/predict/{event_id}``). A request's latency covers all three steps.
Images are MNIST test digits as 112×112 PNGs of dark ink on white paper, like scans.

For each level of concurrency it reports requests/s, p50/p95/p99 latency, errors (anything but a
completed answer) and wrong digits; then it measures the server's resident memory before and after
``--soak`` requests at the highest level. The table is printed and saved to ``bench/results/load.json``.
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
from tests.app_server import APP, running_app  # noqa: E402

DATA_ROOT = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results" / "load.json"
SCAN_SIZE = 112


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


async def predict(session: aiohttp.ClientSession, url: str, pngs: list[bytes]) -> list[dict]:
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


async def run_level(url: str, scans: list[tuple[bytes, int]], clients: int, requests: int,
                    max_seconds: float, files_per_request: int = 1) -> Level:
    """``clients`` concurrent clients share ``requests`` requests, stopping early after ``max_seconds``."""
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
                    answers = await predict(session, url, [png for png, _ in batch])
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


def print_table(rows: list[dict], memory: dict) -> None:
    """The results for people."""
    print(f"{'clients':>7} {'files/req':>9} {'requests':>8} {'req/s':>7} {'pred/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'p99 ms':>7} {'errors':>6} {'wrong':>5}")
    for row in rows:
        print(f"{row['clients']:>7} {row['files_per_request']:>9} {row['requests']:>8} {row['requests_per_s']:>7} "
              f"{row['predictions_per_s']:>7} {row['p50_ms']:>7} "
              f"{row['p95_ms']:>7} {row['p99_ms']:>7} {row['errors']:>6} {row['wrong_digits']:>5}")
    print(f"server RSS: {memory['rss_before_mb']} MB before, {memory['rss_after_mb']} MB after "
          f"{memory['soak_requests']} requests ({memory['soak_errors']} errors); "
          f"{memory['uploaded_files_kept']} uploaded files ({memory['uploaded_mb_kept']} MB) left on disk")


async def benchmark(options: argparse.Namespace) -> dict:
    """Start the app, warm it up, run every level and the memory soak; return the results."""
    scans = digit_scans(options.images)
    uploads = Path(tempfile.mkdtemp(prefix="hdr-load-uploads-"))  # Gradio keeps every uploaded file here
    environment = {"GRADIO_TEMP_DIR": str(uploads), "PYTHONPATH": str(REPO),  # PYTHONPATH: for --app copies
                   **dict(setting.split("=", 1) for setting in options.env)}
    with running_app(options.app, log=options.server_log, env=environment) as app:
        warm_up = await run_level(app.url, scans, 4, 40, 120)
        if warm_up.errors:
            raise SystemExit(f"the app fails to answer: {warm_up.error_examples[:3]}")
        levels = []
        for clients in options.levels:
            level = await run_level(app.url, scans, clients, options.requests, options.max_seconds,
                                    options.files_per_request)
            levels.append(level.summary())
            print(f"  {clients} clients: {levels[-1]['predictions_per_s']} predictions/s", flush=True)
        rss_before = app.rss_bytes()
        soak = await run_level(app.url, scans, max(options.levels), options.soak, options.soak_max_seconds,
                               options.files_per_request)
        rss_after = app.rss_bytes()
        upload_files = [path for path in uploads.rglob("*") if path.is_file()]
        upload_mb = sum(path.stat().st_size for path in upload_files) / 2**20
    shutil.rmtree(uploads, ignore_errors=True)
    memory = {
        "soak_clients": soak.clients, "soak_requests": soak.requests, "soak_errors": soak.errors,
        "soak_predictions": soak.predictions, "soak_requests_per_s": soak.summary()["requests_per_s"],
        "rss_before_mb": round(rss_before / 2**20, 1), "rss_after_mb": round(rss_after / 2**20, 1),
        "uploaded_files_kept": len(upload_files), "uploaded_mb_kept": round(upload_mb, 2),
    }
    return {
        "command": "python -m bench.bench_load " + " ".join(sys.argv[1:]),
        "app": str(options.app),
        "app_environment": options.env,
        "endpoint": ("/predict" if options.files_per_request == 1 else "/predict_batch")
        + " (upload + call + event stream per request)",
        "images": f"{len(scans)} MNIST test digits as {SCAN_SIZE}x{SCAN_SIZE} PNG scans",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "levels": levels,
        "memory": memory,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 16, 64], help="concurrent clients per level")
    parser.add_argument("--requests", type=int, default=3000, help="requests per level at most")
    parser.add_argument("--max-seconds", type=float, default=30, help="time per level at most")
    parser.add_argument("--soak", type=int, default=10_000, help="requests between the two RSS readings")
    parser.add_argument("--soak-max-seconds", type=float, default=300, help="time for the soak at most")
    parser.add_argument("--images", type=int, default=500, help="distinct test digits to send")
    parser.add_argument("--files-per-request", type=int, default=1,
                        help="images per request: 1 uses /predict, more use /predict_batch")
    parser.add_argument("--app", type=Path, default=APP, help="the app to load (default: app.py; or a variant)")
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="extra environment of the app, e.g. GRADIO_DEFAULT_CONCURRENCY_LIMIT=2")
    parser.add_argument("--server-log", type=Path, default=None, help="write the app's output here")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    options = parser.parse_args(argv)
    results = asyncio.run(benchmark(options))
    print_table(results["levels"], results["memory"])
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {options.output}")


if __name__ == "__main__":
    main()
