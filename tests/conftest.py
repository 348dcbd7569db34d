"""Shared fixtures. Tests run against the real PostgreSQL (pgvector) and Redis of the
test services folder (``.data/test``), or DATABASE_URL / REDIS_URL when they are set."""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from config.embedded import socket_database_url
from knowledge import services as kb_services
from knowledge.models import Category
from tests.factories import (
    AgentFactory,
    CustomerFactory,
    ManagerFactory,
    OrganizationFactory,
)
from tests.servers import (  # noqa: F401  (free_port, uvicorn_command: re-exported)
    celery_worker_command,
    free_port,
    uvicorn_command,
    wait_for_http,
)

BASE_DIR = Path(__file__).resolve().parent.parent


# What data migrations write into an empty database (roles, the default SLA policies and
# their targets, the general queue, the default rules), by the migrations' own functions.
MIGRATION_DATA = [
    ("support.migrations.0001_staff_groups", "create_groups"),
    ("support.migrations.0003_event_log_append_only_and_defaults", "seed"),
    ("support.migrations.0017_sla_targets_from_hours", "forwards"),
    ("automation.migrations.0004_default_rules", "ship"),
    ("automation.migrations.0005_policy_refund_questions", "split"),
]


@receiver(post_migrate, dispatch_uid="tests-restore-migration-data")
def _restore_migration_data(sender, **kwargs):
    """A transactional test ends with a flush, which empties every table: write the data
    migrations' rows again (get_or_create: nothing twice), so that a test which runs after
    it, on the same process's database, starts from what ``migrate`` left."""
    if sender.label != "automation":  # post_migrate comes once per app; once is enough
        return
    for module, function in MIGRATION_DATA:
        getattr(importlib.import_module(module), function)(django_apps, None)


def pytest_collection_modifyitems(config, items):
    """Modules with the longest tests (``@pytest.mark.long(seconds)``) first, longest
    first, each kept whole (module fixtures are made once): a parallel run (``make test``,
    pytest-xdist) then starts them at once instead of ending on one of them alone."""

    def module_seconds(item) -> float:
        return max((m.args[0] for m in item.iter_markers("long")), default=0)

    by_module: dict[str, float] = {}
    for item in items:
        key = item.nodeid.split("::")[0]
        by_module[key] = max(by_module.get(key, 0), module_seconds(item))
    items.sort(key=lambda item: -by_module[item.nodeid.split("::")[0]])


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    """Each session starts with empty Redis databases (broker, results, cache, channels)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushall()
    client.close()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets its own channel layer object. Every test that opens a socket runs in
    an event loop of its own, and the layer keeps asyncio locks bound to the loop that
    made them: a receive a finished test left waiting would otherwise hold the lock for
    the next test's loop ("bound to a different event loop")."""
    from channels.layers import channel_layers

    yield
    channel_layers.backends.clear()


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
def _live_updates_sent():
    """Live updates go out from a background thread: a test's own are sent (the feed's
    counts owed included) before the next test's sockets connect."""
    from support import realtime

    yield
    realtime.flush(timeout=10)


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


def stop_process(process: subprocess.Popen, log: Path) -> None:
    """Stop a server a test started (politely, then not) and drop its log."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    log.unlink(missing_ok=True)


@contextlib.contextmanager
def celery_worker(**env_overrides: str):
    """A real `celery -A config worker` process on the test Redis and the test database."""
    log = BASE_DIR / ".data" / "test" / f"celery-worker-{time.monotonic_ns()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = celery_worker_command(
        pool="solo", concurrency=1, hostname=f"test-{time.monotonic_ns()}@%h"
    )
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=subprocess_env(**env_overrides),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_worker(process, log)
        yield process
    finally:
        stop_process(process, log)


@pytest.fixture
def celery_worker_process(transactional_db):
    with celery_worker() as process:
        yield process


def _wait_for_worker(process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Celery worker exited:\n{log.read_text()[-3000:]}")
        if b"ready." in log.read_bytes():
            return
        time.sleep(0.2)
    raise RuntimeError(f"Celery worker not ready in {timeout}s:\n{log.read_text()[-3000:]}")


# ---- knowledge base ------------------------------------------------------------


ARTICLES = [
    (
        "Reset a forgotten password",
        "account",
        "## Reset it\n\nOn the sign-in page choose **Forgot password?**, enter the email of "
        "your account and follow the link we send. The link works for 30 minutes.\n\n"
        "## No email arrived\n\nCheck the spam folder, then ask us.",
    ),
    (
        "Export tasks to CSV",
        "data",
        "## Export\n\nOpen a project, choose **Export → CSV**. Exports stop at 50,000 rows; "
        "split larger projects by date.\n\n## Timeouts\n\nVery large exports may time out.",
    ),
    (
        "I was charged twice",
        "billing",
        "## Duplicate charges\n\nIf your card shows two identical charges, one is usually a "
        "temporary authorization that disappears within 5 business days. If both are captured "
        "we refund the extra one.",
    ),
    (
        "API rate limits and 429 errors",
        "data",
        "## Limits\n\nEach token may send 10 requests per second. Above that the API answers "
        "`429 Too Many Requests` with a `Retry-After` header.\n\n## Handling 429\n\nWait the "
        "number of seconds in Retry-After, then retry.",
    ),
    (
        "Delete your account",
        "account",
        "## Before you delete\n\nDeleting your account removes every project after a 30-day "
        "grace period.\n\n## Steps\n\nGo to Settings → Account → Delete account.",
    ),
    (
        "Invite teammates",
        "account",
        "## Invite\n\nGo to Settings → Members → Invite and enter their email addresses. Each "
        "member takes a seat.",
    ),
]


@pytest.fixture(scope="session")
def local_provider():
    """The real all-MiniLM-L6-v2, loaded once for the session."""
    from integrations.embeddings import get_provider

    provider = get_provider("local")
    provider.embed_query("warm up")
    return provider


@pytest.fixture
def categories(db):
    root = Category.objects.create(name="Help", slug="help")
    return {
        slug: Category.objects.create(name=slug.title(), slug=slug, parent=root)
        for slug in ("account", "data", "billing")
    }


@pytest.fixture
def kb(categories, local_provider):
    """Published, embedded articles (real model, real pgvector)."""
    articles = {}
    for title, category, body in ARTICLES:
        article = kb_services.article_create(
            title=title, body=body, category=categories[category], publish=True
        )
        kb_services.article_embed(article_id=article.pk, provider=local_provider)
        articles[title] = article
    return articles


# ---- a real headless browser ---------------------------------------------------------------

ARTIFACTS = BASE_DIR / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    import shutil

    return os.environ.get("HELPDESK_CHROMIUM") or shutil.which("chromium")


@pytest.fixture
def browser(monkeypatch):
    """Debian's Chromium driven by Playwright (``make test`` installs the package).

    Under CI a missing browser fails the test; elsewhere it is skipped with the reason.
    Playwright's sync API runs an event loop in this thread, so Django's guard against
    ORM calls from async code is lifted for these tests (the calls stay synchronous).
    """
    path = chromium_path()
    if path is None:
        message = "Chromium is not installed (apt-get install chromium; make test does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
            # Inside Playwright's loop Django's per-context connections are separate ones:
            # close them here, or they would outlive the test database.
            from django.db import connections

            connections.close_all()


@pytest.fixture(scope="session")
def live_server(django_db_setup, django_db_blocker):
    """pytest-django's live server, stopped before the test database is dropped (its own
    fixture does not depend on the database, so its connection could outlive it)."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer(os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost")
    yield server
    server.stop()


FACTORY_PASSWORD = "correct-horse-battery"  # the factories' test password


def browser_login(page, live_server, username: str, password: str = FACTORY_PASSWORD):
    """Sign in through the real login form."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", username)  # allauth's field: username or email
    page.fill("input[name=password]", password)
    page.click("form [type=submit]")
    page.wait_for_load_state()
