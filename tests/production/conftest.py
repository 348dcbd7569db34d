"""Production mode as an operator runs it: ``DEBUG=false``, static files collected by the
Dockerfile's own command line, uvicorn behind a (simulated) TLS proxy."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    BASE_DIR,
    free_port,
    stop_process,
    subprocess_env,
    uvicorn_command,
    wait_for_http,
)

STRONG_KEY = "k3y-" + "pR0d5m0k3T3sTq8Lw2Zx7Vn4Jc1Hb6Gd" * 2


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    instructions, pending = [], ""
    for line in (BASE_DIR / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def dockerfile_collectstatic() -> str:
    """The shell command of the ``RUN … collectstatic`` instruction."""
    commands = [args for kind, args in dockerfile_instructions() if kind == "RUN"]
    found = [command for command in commands if "collectstatic" in command]
    assert len(found) == 1, f"expected one RUN … collectstatic in the Dockerfile: {commands}"
    return found[0]


def dockerfile_env() -> dict[str, str]:
    """What the Dockerfile's ENV instructions set (``ENV A=1 B=2``)."""
    values = {}
    for kind, args in dockerfile_instructions():
        if kind == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


@dataclass
class Collected:
    root: Path
    result: subprocess.CompletedProcess

    @property
    def manifest(self) -> dict:
        return json.loads((self.root / "staticfiles.json").read_text())


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory) -> Collected:
    """The Dockerfile's collectstatic, run as the image build runs it (``sh -c``, only the
    image's environment, no .env, not under pytest), into a temporary STATIC_ROOT."""
    root = tmp_path_factory.mktemp("staticfiles")
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # `python` = this venv
        "HOME": os.environ.get("HOME", "/root"),
        **dockerfile_env(),
        "STATIC_ROOT": str(root),
        "HELPDESK_ENV_FILE": "",  # .dockerignore keeps .env out of the image
    }
    result = subprocess.run(
        ["sh", "-c", dockerfile_collectstatic()],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Collected(root, result)


def production_env(**overrides: str | None) -> dict[str, str]:
    """This session's database and Redis, with the production settings of a site behind a
    TLS-terminating proxy. ``None`` removes a variable."""
    env = subprocess_env(
        DEBUG="false",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="localhost",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        LOG_LEVEL="WARNING",
    )
    env.pop("PYTEST_VERSION", None)  # a production process, not a test
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def production_server(static_root: Path, **env_overrides: str):
    """``python -m uvicorn config.asgi:application`` with DEBUG=false on the test database,
    serving the collected static files (WhiteNoise reads STATIC_ROOT and its manifest)."""
    port = free_port()
    url = f"http://localhost:{port}"
    log = BASE_DIR / ".data" / "test" / f"uvicorn-production-{time.monotonic_ns()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = production_env(
        STATIC_ROOT=str(static_root),
        # Chromium talks plain HTTP to localhost while the proxy header says https, so the
        # origin it sends (http://localhost:port) is not the one Django derives (https://…).
        # Behind a real proxy both are https://host; here the test origin is trusted.
        CSRF_TRUSTED_ORIGINS=url,
        **env_overrides,
    )
    command = uvicorn_command(port)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(url, process, log)
    try:
        wait_for_http(url, process, server.log_text)
        yield server
    except BaseException:
        print(f"--- uvicorn (production) log ---\n{server.log_text()[-6000:]}", file=sys.stderr)
        raise
    finally:
        stop_process(process, log)
