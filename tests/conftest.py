"""Shared fixtures. Tests run against the real PostgreSQL (pgvector) and Redis of the
test services folder (``.data/test``), or DATABASE_URL / REDIS_URL when they are set."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.embedded import socket_database_url
from tests.factories import (
    AgentFactory,
    CustomerFactory,
    ManagerFactory,
    OrganizationFactory,
)

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    """Each session starts with empty Redis databases (broker, results, cache, channels)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushall()
    client.close()


@pytest.fixture
def org_a(db):
    return OrganizationFactory(name="Acme", mrr=2000)


@pytest.fixture
def org_b(db):
    return OrganizationFactory(name="Globex", mrr=100)


@pytest.fixture
def customer(org_a):
    """Customer of organization A."""
    return CustomerFactory(username="customer-a", first_name="Casey", profile__organization=org_a)


@pytest.fixture
def colleague(org_a):
    """Another customer of organization A (not its admin)."""
    return CustomerFactory(username="colleague-a", profile__organization=org_a)


@pytest.fixture
def org_admin(org_a):
    return CustomerFactory(
        username="admin-a", profile__organization=org_a, profile__is_org_admin=True
    )


@pytest.fixture
def other_customer(org_b):
    """Customer of organization B."""
    return CustomerFactory(username="customer-b", profile__organization=org_b)


@pytest.fixture
def ticket(customer):
    from support.services import ticket_open

    return ticket_open(
        requester=customer,
        subject="Cannot export invoices",
        description="The export button spins forever.",
        type="billing",
    )


@pytest.fixture
def run_effects(django_capture_on_commit_callbacks, settings):
    """Run what services schedule after commit, with Celery tasks executed inline.

    Unit tests only: the real worker path is tested in tests/foundation/test_celery.py.
    """
    from config.celery import app

    class Runner:
        def __enter__(self):
            self._capture = django_capture_on_commit_callbacks(execute=False)
            self.callbacks = self._capture.__enter__()
            return self

        def __exit__(self, *exc):
            self._capture.__exit__(*exc)
            if exc[0] is None:
                app.conf.task_always_eager = True
                try:
                    for callback in self.callbacks:
                        callback()
                finally:
                    app.conf.task_always_eager = False

    return Runner


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Effects are deduplicated in the cache; each test starts without old claims."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def agent(db):
    return AgentFactory(username="agent-a")


@pytest.fixture
def manager(db):
    return ManagerFactory(username="manager-a")


def database_url() -> str:
    """A URL for the database this test session uses (the test database)."""
    s = connection.settings_dict
    host = str(s["HOST"] or s["OPTIONS"].get("host", ""))
    port = s["PORT"] or s["OPTIONS"].get("port") or 5432
    if host.startswith("/"):
        return socket_database_url(s["USER"], host, port, s["NAME"])
    auth = s["USER"] + (f":{quote(s['PASSWORD'])}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


def subprocess_env(**overrides: str) -> dict[str, str]:
    """Environment for a child process that must use this session's services."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        HELPDESK_ENV_FILE="",
    )
    env.update(overrides)
    return env


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real `celery -A config worker` process on the test Redis and the test database."""
    log = BASE_DIR / ".data" / "test" / "celery-worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"test-{os.getpid()}@%h",
            ],
            cwd=BASE_DIR,
            env=subprocess_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_worker(process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for_worker(process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Celery worker exited:\n{log.read_text()[-3000:]}")
        if b"ready." in log.read_bytes():
            return
        time.sleep(0.2)
    raise RuntimeError(f"Celery worker not ready in {timeout}s:\n{log.read_text()[-3000:]}")
