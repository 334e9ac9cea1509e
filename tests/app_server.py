"""Start the Gradio app (``app.py``) in a subprocess on a free loopback port, for tests and benchmarks."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"


@dataclass
class RunningApp:
    """A started app: its base URL (``http://127.0.0.1:PORT``) and its process."""

    url: str
    process: subprocess.Popen

    def rss_bytes(self) -> int:
        """Resident memory of the server process, from ``/proc``."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS not found")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(app: Path = APP, timeout: float = 300.0, env: dict | None = None,
                log: Path | None = None) -> Iterator[RunningApp]:
    """Run ``python app.py --host 127.0.0.1 --port N`` until the block ends; wait until it serves ``/config``.

    The app's output goes to ``log`` (a temporary file if None); its end is quoted if the app fails to start.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "NO_PROXY": "127.0.0.1,localhost",
                   **(env or {})}
    with (open(log, "w+b") if log else tempfile.TemporaryFile()) as output:
        process = subprocess.Popen([sys.executable, str(app), "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=app.parent, env=environment, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(url, process, timeout, output)
            yield RunningApp(url, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float, output) -> None:
    """Poll ``url/config`` until it answers; raise with the app's last output if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            problem = f"the app exited with status {process.returncode} before serving {url}"
        elif time.monotonic() > deadline:
            problem = f"the app did not serve {url} within {timeout:.0f} s"
        else:
            try:
                with urllib.request.urlopen(f"{url}/config", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
            continue
        output.seek(0)
        tail = output.read().decode(errors="replace")[-3000:]
        raise RuntimeError(f"{problem}; its output ends with:\n{tail}")
