"""The run command brings the whole stack up and Ctrl-C brings all of it down."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from config import embedded
from tests.conftest import BASE_DIR


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.mark.slow
def test_run_command_serves_the_product_and_stops_on_ctrl_c(tmp_path):
    services = tmp_path / "stack"
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "PYTEST_VERSION"}
    }
    env.update(
        HELPDESK_SERVICES_DIR=str(services),
        HELPDESK_ENV_FILE="",
        DEBUG="true",
        SECRET_KEY="dev-only-test-key-for-the-run-command-test",
    )
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.devstack", "--port", str(port)],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while b"Helpdesk is running at" not in log.read_bytes():
            assert process.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
        children = psutil.Process(process.pid).children(recursive=True)

        status, body = _get_json(f"http://127.0.0.1:{port}/health/ready/")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/") as page:
            admin_status = page.status
        printed = log.read_text()

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        embedded.stop(services)

    assert status == 200, body
    assert {c["status"] for c in body["components"].values()} == {"up"}
    assert admin_status == 200
    assert "all components up" in printed
    for username, password in [
        ("customer", "customer-demo"),
        ("agent", "agent-demo"),
        ("manager", "manager-demo"),
        ("admin", "admin-demo"),
    ]:
        assert username in printed and password in printed
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == []  # web, worker and beat are gone
    assert embedded.status(services) == {"dir": str(services), "postgres_pid": None, "redis": None}
