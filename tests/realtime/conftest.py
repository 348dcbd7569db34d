"""Helpers of the live-update tests: WebSocket connections to the real ASGI application
(origin check, session or token authentication, routing) over the real Redis layer."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from tests.conftest import stop_process

ORIGIN = "http://testserver"


def headers(user=None, *, origin: str | None = ORIGIN, token: str | None = None) -> list:
    """Handshake headers: the page's origin, the session cookie of ``user`` signed in
    through Django's login, or an API token."""
    found = []
    if origin is not None:
        found.append((b"origin", origin.encode()))
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        found.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    if token is not None:
        found.append((b"authorization", f"Token {token}".encode()))
    return found


def communicator(path: str, header_list: list) -> WebsocketCommunicator:
    from config.asgi import application

    return WebsocketCommunicator(application, path, headers=header_list)


async def next_of(socket: WebsocketCommunicator, kind: str, *, timeout: float = 5.0) -> dict:
    """The next frame of type ``kind``, skipping others."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"no {kind!r} frame within {timeout}s")
        frame = await socket.receive_json_from(timeout=left)
        if frame["type"] == kind:
            return frame


async def frames_until_quiet(socket: WebsocketCommunicator, *, quiet: float = 0.5) -> list[dict]:
    """Every frame that arrives until none has for ``quiet`` seconds."""
    frames = []
    while not await socket.receive_nothing(timeout=quiet, interval=0.02):
        frames.append(await socket.receive_json_from())
    return frames


@contextlib.asynccontextmanager
async def connected(path: str, header_list: list):
    """An open, greeted connection (``hello`` already read)."""
    socket = communicator(path, header_list)
    accepted, _ = await socket.connect(timeout=5)
    assert accepted
    hello = await socket.receive_json_from(timeout=5)
    assert hello["type"] == "hello", hello
    try:
        yield socket
    finally:
        await socket.disconnect()


# ---- an ASGI server that speaks WebSocket, on the test database ---------------------------


class AsgiServer:
    def __init__(self, url: str, process, log):
        self.url = url
        self.process = process
        self.log = log


@contextlib.contextmanager
def asgi_server(**env_overrides: str):
    """uvicorn serving ``config.asgi`` (HTTP and WebSocket, as ``make run`` does) in a
    child process on this session's database and Redis. pytest-django's live server is
    WSGI only."""
    import subprocess
    import time

    from tests.conftest import (
        BASE_DIR,
        free_port,
        subprocess_env,
        uvicorn_command,
        wait_for_http,
    )

    port = free_port()
    log = BASE_DIR / ".data" / "test" / f"uvicorn-{time.monotonic_ns()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = uvicorn_command(port, "--ws-max-size", "1048576", "--log-level", "warning")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=subprocess_env(LOG_LEVEL="WARNING", **env_overrides),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url, process, log.read_text)
        yield AsgiServer(url, process, log)
    finally:
        stop_process(process, log)


@pytest.fixture(scope="module")
def live_asgi(django_db_setup):
    with asgi_server() as server:
        yield server
