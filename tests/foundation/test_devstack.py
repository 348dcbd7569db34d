"""The run command brings the whole stack up, restarts a crashed process, and Ctrl-C
brings all of it down; the supervisor behind it, on tiny child commands."""

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from config import embedded
from config.devstack import demo_data_args
from config.supervisor import Supervisor
from tests.conftest import BASE_DIR, free_port

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]


def _wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@contextlib.contextmanager
def _supervising(supervisor: Supervisor):
    thread = threading.Thread(target=supervisor.run)
    thread.start()
    try:
        yield
    finally:
        supervisor.stop()
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_a_child_killed_with_sigkill_is_restarted_and_its_orphans_are_ended():
    out = io.StringIO()
    supervisor = Supervisor(output=out, initial_delay=0.2, grace=5)
    supervisor.add(
        "web",
        [
            sys.executable,
            "-c",
            # Like uvicorn's master: a worker process that would keep the port if orphaned.
            "import subprocess, sys, time; "
            "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print('worker', w.pid, flush=True); time.sleep(60)",
        ],
    )
    program = supervisor.programs["web"]

    def workers():
        return re.findall(r"\d\d:\d\d:\d\d web +\| worker (\d+)", out.getvalue())

    with _supervising(supervisor):
        first = _wait_for(lambda: program.pid and workers() and program.pid, what="first start")
        orphan = int(workers()[0])
        os.kill(first, signal.SIGKILL)
        _wait_for(lambda: len(workers()) == 2, what="the restarted child's output")
        second = program.pid
        _wait_for(lambda: _gone(orphan), timeout=10, what="the orphan to end")
    log = out.getvalue()

    assert second not in (None, first)
    assert "web exited with -9 (SIGKILL)" in log
    assert "restarting in 0.2 s" in log
    assert f"web started (pid {second})" in log


def test_backoff_doubles_for_a_crash_loop_and_resets_after_a_stable_run():
    out = io.StringIO()
    supervisor = Supervisor(output=out, initial_delay=0.1, max_delay=0.4, stable_after=1.0)
    supervisor.add("crasher", [sys.executable, "-c", "raise SystemExit(3)"])
    supervisor.add("steady", [sys.executable, "-c", "import time; time.sleep(1.1)"])

    def delays(name):
        return re.findall(
            rf"{name} exited with (-?\d+) after [\d.]+ s; restarting in ([\d.]+) s", out.getvalue()
        )

    with _supervising(supervisor):
        _wait_for(lambda: len(delays("crasher")) >= 5 and len(delays("steady")) >= 2, timeout=20)

    assert [delay for _, delay in delays("crasher")][:5] == ["0.1", "0.2", "0.4", "0.4", "0.4"]
    assert {code for code, _ in delays("crasher")} == {"3"}
    assert {delay for _, delay in delays("steady")} == {"0.1"}  # each run lasted > 1 s


def test_stop_terminates_every_child_and_kills_the_stubborn_one():
    out = io.StringIO()
    supervisor = Supervisor(output=out, grace=0.5)
    supervisor.add("polite", SLEEPER)
    supervisor.add(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('up', flush=True); time.sleep(60)",
        ],
    )
    with _supervising(supervisor):
        _wait_for(lambda: out.getvalue().count("| up") == 2, what="both children")
        pids = [program.pid for program in supervisor.programs.values()]
        stopping = time.monotonic()
    took = time.monotonic() - stopping

    assert all(_gone(pid) for pid in pids)
    assert took < 5
    log = out.getvalue()
    assert "stubborn did not stop in 0.5 s; killing" in log
    assert "polite did not stop" not in log
    assert "restarting" not in log  # stopping is not crashing
    assert log.rstrip().endswith("all processes stopped")


def test_sigterm_to_the_supervisor_stops_its_children():
    script = (
        "import sys; from config.supervisor import Supervisor; s = Supervisor(); "
        f"s.add('sleeper', {SLEEPER!r}); sys.exit(s.run())"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
    )
    try:
        started = _wait_for(
            lambda: re.search(r"sleeper started \(pid (\d+)\)", process.stdout.readline())
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    rest = process.stdout.read()

    assert _gone(int(started.group(1)))
    assert "SIGTERM received; stopping" in rest


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "false", "HELPDESK_DEMO": "true"}, ["--force"]),
        ({"DEBUG": "true", "HELPDESK_DEMO": "true"}, []),
        ({"DEBUG": "false"}, None),
        ({}, None),
    ],
)
def test_demo_data_in_production_mode_only_when_a_trial_asks_for_it(env, expected):
    # None: not loaded (known passwords); ["--force"]: a production-mode trial asked for it.
    assert demo_data_args({**env, "HELPDESK_ENV_FILE": ""}) == expected


def test_the_dotenv_counts_when_deciding_to_force_the_demo(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DEBUG=false\nHELPDESK_DEMO=true\n")

    assert demo_data_args({"HELPDESK_ENV_FILE": str(dotenv)}) == ["--force"]
    assert demo_data_args({"HELPDESK_ENV_FILE": str(dotenv), "DEBUG": "true"}) == []


def _get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.mark.long(50)
@pytest.mark.slow
def test_run_command_serves_the_product_and_stops_on_ctrl_c(tmp_path):
    # Outside pytest's tmp root, which other pytest sessions reset to 0700 (see
    # test_embedded.services_dir).
    services = Path(tempfile.mkdtemp(prefix="helpdesk-stack-"))
    port = free_port()
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
        # A crashed Celery worker is restarted; the web server stays up meanwhile.
        # (the latest worker: on a busy machine an early one may have been restarted, and
        # the delay then doubles)
        worker = int(re.findall(r"worker started \(pid (\d+)\)", log.read_text())[-1])
        os.kill(worker, signal.SIGKILL)
        restarted = _wait_for(
            lambda: re.search(
                # (other programs' lines may come in between on a busy machine)
                r"worker exited with -9 \(SIGKILL\).*restarting in [\d.]+ s\n"
                r"(?:.*\n)*?.*worker started \(pid (\d+)\)",
                log.read_text(),
            ),
            timeout=30,
            what="the worker's restart",
        )
        children = psutil.Process(process.pid).children(recursive=True)

        status, body = _get_json(f"http://127.0.0.1:{port}/health/ready/")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/") as page:
            admin_status = page.status
        printed = log.read_text()

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            # Its programs run in sessions of their own: end them too, not only the group.
            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
            os.killpg(process.pid, signal.SIGKILL)
        embedded.stop(services)
        shutil.rmtree(services, ignore_errors=True)

    assert int(restarted.group(1)) != worker
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
