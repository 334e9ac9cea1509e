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
        return rss_bytes(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and its workers have used so far, from ``/proc``."""
        return sum(cpu_seconds(pid) for pid in [self.process.pid, *self.worker_pids()])

    def worker_pids(self) -> list[int]:
        """The server's child processes (its preprocessing workers)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # after "pid (name)": state, ppid
            except (OSError, IndexError, ValueError):  # the process ended meanwhile
                continue
            if parent == self.process.pid:
                pids.append(int(stat.parent.name))
        return sorted(pids)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # from the state (field 3) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15: utime, stime


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from ``/proc``."""
    return _kilobytes(f"/proc/{pid}/status", "VmRSS:") * 1024


def pss_bytes(pid: int) -> int:
    """Proportional set size of a process: its resident memory, each page shared with n processes counted 1/n."""
    return _kilobytes(f"/proc/{pid}/smaps_rollup", "Pss:") * 1024


def _kilobytes(path: str, key: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not found in {path}")


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
