"""Starting servers in tests and benchmarks, without Django: a free port, the uvicorn
command line of the project's ASGI app, waiting until a server answers."""

from __future__ import annotations

import subprocess
import sys
import time


def free_port() -> int:
    """A free TCP port on loopback (for a server a test starts)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def uvicorn_command(port: int, *extra: str) -> list[str]:
    """``python -m uvicorn`` serving the project's ASGI app on loopback, as ``make run``."""
    return [
        *(sys.executable, "-m", "uvicorn", "config.asgi:application"),
        *("--host", "127.0.0.1", "--port", str(port), "--ws", "websockets", "--no-access-log"),
        *extra,
    ]


def wait_for_http(
    url: str, process: subprocess.Popen, log_text, *, path: str = "/health/", timeout: float = 60
) -> None:
    """Wait until ``url + path`` answers 200; fail with the server's log (``log_text()``)
    if it exits or is not up in ``timeout`` seconds."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready in {timeout}s:\n{log_text()[-3000:]}")
        time.sleep(0.2)


def celery_worker_command(*, pool: str, concurrency: int, hostname: str) -> list[str]:
    """``celery -A config worker`` as tests start it (no gossip or mingle: one worker)."""
    return [
        *(sys.executable, "-m", "celery", "-A", "config", "worker"),
        *("--pool", pool, "--concurrency", str(concurrency), "--loglevel", "INFO"),
        *("--without-gossip", "--without-mingle", "--hostname", hostname),
    ]
