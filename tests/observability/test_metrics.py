"""``/metrics``: the names and labels Prometheus receives after real requests, tasks, an
AI analysis, a search, a WebSocket, mail in and out; who may read it; several processes
added up; a broker that is down; the Grafana dashboard's queries; Sentry when configured."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from asgiref.sync import async_to_sync
from django.core import mail as sent_mail
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from config import metrics
from config.celery import app
from integrations.llm.local import LocalProvider
from support import notifications, services
from support.ai import pipeline
from support.models import SupportAddress
from tests.conftest import BASE_DIR, free_port, subprocess_env
from tests.realtime.conftest import connected, headers

DASHBOARD = BASE_DIR / "deploy" / "grafana" / "helpdesk.json"


class Scrape:
    """One answer of ``/metrics``, parsed: ``value(name, **labels)``."""

    def __init__(self, body: str):
        self.body = body
        self.samples = {}
        self.families = {}
        for family in text_string_to_metric_families(body):
            self.families[family.name] = family
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                self.samples[key] = sample.value

    def value(self, name: str, **labels) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def minus(self, before: Scrape):
        """``delta(name, **labels)``: how much a series grew since ``before``."""
        return lambda name, **labels: self.value(name, **labels) - before.value(name, **labels)

    def series(self, name: str) -> list[dict]:
        return [dict(labels) for (found, labels) in self.samples if found == name]


def scrape(client=None, **extra) -> Scrape:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    return Scrape(response.content.decode())


def mail(*, sender="Dana Reyes <dana@client.example>", to="support@acme.example") -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, "The printer is on fire"
    message["Date"], message["Message-ID"] = formatdate(), make_msgid(domain="client.example")
    message.set_content("It started this morning.\n")
    return message.as_bytes()


@app.task(name="tests.observability.explode")
def explode():
    raise RuntimeError("boom")


# ---- requests ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_counted_by_url_pattern_method_and_status_with_their_queries(customer):
    client, api = Client(), APIClient()
    api.force_authenticate(customer)
    before = scrape()

    assert client.get("/health/").status_code == 200
    assert client.get("/no/such/page/abc123/").status_code == 404
    created = api.post(
        "/api/tickets/",
        {"subject": "Printer on fire", "description": "It smokes.", "type": "general"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert client.get(f"/api/tickets/{created.json()['reference']}/").status_code in (401, 403)

    after = scrape()
    delta = after.minus(before)
    assert delta("helpdesk_http_requests_total", route="/health/", method="GET", status="200") == 1
    # The raw path of a 404 never becomes a label: unbounded values would flood Prometheus.
    assert delta("helpdesk_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert "abc123" not in after.body
    create_route = "/api/tickets/"
    # (Earlier tests of this process may have counted the same routes: deltas only.)
    detail = [
        labels
        for labels in after.series("helpdesk_http_requests_total")
        if labels["route"] == "/api/tickets/<str:reference>/"
        and delta("helpdesk_http_requests_total", **labels) > 0
    ]
    assert [labels["status"] for labels in detail] in (["401"], ["403"])
    assert (
        delta("helpdesk_http_requests_total", route=create_route, method="POST", status="201") == 1
    )
    assert created.json()["reference"] not in after.body  # the detail URL's label is its pattern
    assert (
        delta("helpdesk_http_request_duration_seconds_count", route=create_route, method="POST")
        == 1
    )
    # A create runs several SQL queries (insert, event, outbox...), all counted and timed.
    assert delta("helpdesk_db_queries_total", route=create_route) >= 3
    assert delta("helpdesk_db_query_duration_seconds_count") >= 3
    # /metrics does not count itself.
    assert not [s for s in after.series("helpdesk_http_requests_total") if s["route"] == "/metrics"]


# ---- who may read --------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_loopback_reads_by_default_and_refusals_leak_nothing(settings):
    settings.METRICS_TOKEN = ""
    outsider = Client(REMOTE_ADDR="203.0.113.9")

    refused = outsider.get("/metrics")

    assert refused.status_code == 403
    assert b"helpdesk_" not in refused.content
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    # Through a proxy on the same machine: loopback proves nothing about the client.
    proxied = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert proxied.get("/metrics").status_code == 403
    # Production redirects plain HTTP to HTTPS, except what probes and scrapers read.
    settings.SECURE_SSL_REDIRECT = True
    assert Client().get("/metrics").status_code == 200
    assert Client().get("/health/").status_code == 200
    assert Client().get("/help/").status_code == 301


@pytest.mark.django_db
def test_a_bearer_token_or_an_allowed_network_lets_a_scraper_in(settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    outsider = Client(REMOTE_ADDR="203.0.113.9")

    missing = outsider.get("/metrics")
    wrong = outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    right = outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    # A wrong token is refused even from loopback.
    wrong_local = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")

    assert (missing.status_code, wrong.status_code, wrong_local.status_code) == (401, 401, 401)
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert b"helpdesk_" not in missing.content + wrong.content
    assert right.status_code == 200 and b"helpdesk_http_requests_total" in right.content

    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 401
    # Behind a proxy that says where the client is, that address is the one checked.
    settings.HELPDESK_CLIENT_ADDRESS_HEADER = "X-Forwarded-For"
    via_proxy = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.9.9.9")
    assert via_proxy.get("/metrics").status_code == 200
    spoofed = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.9")
    assert spoofed.get("/metrics").status_code == 401


# ---- Celery, outbox, broker ----------------------------------------------------------------


@pytest.mark.django_db
def test_tasks_are_counted_by_name_and_outcome_and_queues_read_at_scrape_time():
    before = scrape()

    assert app.tasks["helpdesk.ping"].apply(args=["hi"]).get()["value"] == "hi"
    assert explode.apply().failed()

    after = scrape()
    delta = after.minus(before)
    assert delta("helpdesk_celery_tasks_total", task="helpdesk.ping", outcome="success") == 1
    assert (
        delta("helpdesk_celery_tasks_total", task="tests.observability.explode", outcome="failure")
        == 1
    )
    assert delta("helpdesk_celery_task_duration_seconds_count", task="helpdesk.ping") == 1
    assert after.value("helpdesk_scrape_source_up", source="broker") == 1
    assert {"queue": "celery"} in after.series("helpdesk_celery_queue_length")
    assert after.value("helpdesk_scrape_source_up", source="database") == 1
    statuses = {s["status"] for s in after.series("helpdesk_outbox_items")}
    assert statuses == {"pending", "sent", "running", "failed"}


def test_a_worker_on_another_machine_serves_its_own_task_metrics():
    import urllib.request

    port = free_port()
    server = metrics.serve_worker_metrics(port=port, addr="127.0.0.1")
    try:
        assert app.tasks["helpdesk.ping"].apply(args=["w"]).get()["value"] == "w"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            body = Scrape(answer.read().decode())
    finally:
        server.shutdown()
        server.server_close()

    assert body.value("helpdesk_celery_tasks_total", task="helpdesk.ping", outcome="success") >= 1


@pytest.mark.django_db
def test_the_outbox_depth_counts_open_items(customer):
    before = scrape().value("helpdesk_outbox_items", status="pending")

    services.ticket_open(requester=customer, subject="Help", description="Please.")

    # Opening a ticket owes an analysis (and more): pending outbox rows until relayed.
    assert scrape().value("helpdesk_outbox_items", status="pending") > before


@pytest.mark.django_db
def test_with_the_broker_down_metrics_still_answer_and_say_so(settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"

    result = scrape()

    assert result.value("helpdesk_scrape_source_up", source="broker") == 0
    assert result.series("helpdesk_celery_queue_length") == []
    assert result.value("helpdesk_scrape_source_up", source="database") == 1


# ---- AI, search, email ---------------------------------------------------------------------


@pytest.mark.django_db
def test_an_ai_analysis_and_searches_are_recorded(kb, customer, client):
    before = scrape()
    ticket = services.ticket_open(
        requester=customer, subject="Forgot my password", description="How do I reset it?"
    )

    assert pipeline.analyze_ticket(ticket.pk, provider=LocalProvider()) == "resolved"
    assert client.get("/api/search/?q=reset+password").status_code == 200
    assert client.get("/help/search/?q=reset+password").status_code == 200

    after = scrape()
    delta = after.minus(before)
    assert delta("helpdesk_ai_analyses_total", decision="resolve", outcome="resolved") == 1
    assert delta("helpdesk_ai_confidence_count", decision="resolve") == 1
    # Confidence 0.85 or more: nothing in the buckets below 0.85 moved.
    assert delta("helpdesk_ai_confidence_bucket", decision="resolve", le="0.8") == 0
    assert delta("helpdesk_ai_confidence_bucket", decision="resolve", le="1.0") == 1
    model = {"model": "local-extractive", "use": "analysis"}
    assert {**model, "direction": "input"} in after.series("helpdesk_ai_tokens_total")
    assert model in after.series("helpdesk_ai_cost_usd_total")
    for kind in ("agent", "api", "portal"):
        assert delta("helpdesk_search_duration_seconds_count", kind=kind) == 1, kind


class BrokenProvider(LocalProvider):
    def complete(self, **kwargs):
        raise RuntimeError("unexpected shape from the provider")


@pytest.mark.django_db
def test_a_failed_analysis_is_counted_as_failed(local_provider, customer):
    before = scrape()
    ticket = services.ticket_open(requester=customer, subject="Invite", description="How?")

    # The ticket goes to people; the metric says the analysis failed, not that it decided so.
    assert pipeline.analyze_ticket(ticket.pk, provider=BrokenProvider()) == "escalated"

    after = scrape()
    failed = [s for s in after.series("helpdesk_ai_analyses_total") if s["outcome"] == "failed"]
    assert (
        sum(
            after.value("helpdesk_ai_analyses_total", **labels)
            - before.value("helpdesk_ai_analyses_total", **labels)
            for labels in failed
        )
        == 1
    )


@pytest.mark.django_db
def test_mail_in_by_door_and_outcome_and_mail_out_by_template(customer, agent):
    SupportAddress.objects.create(email="support@acme.example", name="Acme", is_default=True)
    before = scrape()

    inbound = services.email_receive(mail(), door="smtp", recipients=["support@acme.example"])
    ticket = services.ticket_open(requester=customer, subject="Hello", description="Hi")
    message = services.message_add(ticket=ticket, author=agent, body="We are on it.")
    assert notifications.public_reply(ticket, message) == 1

    after = scrape()
    delta = after.minus(before)
    assert inbound.outcome == "created"
    assert delta("helpdesk_emails_received_total", door="smtp", outcome="created") == 1
    assert len(sent_mail.outbox) >= 1
    assert delta("helpdesk_emails_sent_total", template="reply", outcome="sent") == 1


# ---- WebSocket -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_open_websocket_connections_are_gauged_by_consumer(customer):
    as_customer = headers(customer)
    gauge = "helpdesk_websocket_connections"

    async def scenario():
        before = metrics.REGISTRY.get_sample_value(gauge, {"consumer": "ticket"}) or 0
        async with connected("/ws/tickets/", as_customer):
            during = metrics.REGISTRY.get_sample_value(gauge, {"consumer": "ticket"})
        # the server side's disconnect runs as the communicator closes
        after = metrics.REGISTRY.get_sample_value(gauge, {"consumer": "ticket"})
        return before, during, after

    before, during, after = async_to_sync(scenario)()

    assert (during - before, after - before) == (1, 0)
    assert scrape().value("helpdesk_websocket_connections_opened_total", consumer="ticket") >= 1


# ---- several processes ---------------------------------------------------------------------

WRITER = """
import sys
from config import metrics
metrics.HTTP_REQUESTS.labels("/health/", "GET", "200").inc(int(sys.argv[1]))
metrics.websocket_opened("chat")
print("ready", flush=True)
sys.stdin.readline()  # stay alive (a live web worker) until told to go
"""


@pytest.mark.django_db
def test_several_processes_are_added_up_and_dead_ones_leave_the_live_gauges(tmp_path, monkeypatch):
    env = {**subprocess_env(), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(n)],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in (2, 3)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

        both = scrape()
        workers[0].communicate("\n", timeout=20)  # one worker exits
        one_left = scrape()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.communicate("\n", timeout=20)

    labels = {"route": "/health/", "method": "GET", "status": "200"}
    assert both.value("helpdesk_http_requests_total", **labels) == 5
    assert both.value("helpdesk_websocket_connections", consumer="chat") == 2
    # Counters keep what a finished process counted; its open connections are gone.
    assert one_left.value("helpdesk_http_requests_total", **labels) == 5
    assert one_left.value("helpdesk_websocket_connections", consumer="chat") == 1
    assert both.value("helpdesk_scrape_source_up", source="database") == 1


# ---- Grafana -------------------------------------------------------------------------------


def _exprs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr":
                yield value
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _exprs(item)


def test_every_dashboard_query_uses_metrics_that_exist():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = list(_exprs(dashboard))
    defined = metrics.metric_names()

    assert len(exprs) >= 20
    used = set()
    for expr in exprs:
        names = set(re.findall(r"\bhelpdesk_[a-z0-9_]+", expr))
        assert names, expr
        assert names <= defined, (expr, names - defined)
        used |= names
    # Each area of the issue has a chart.
    for wanted in (
        "helpdesk_http_request_duration_seconds_bucket",
        "helpdesk_db_queries_total",
        "helpdesk_celery_tasks_total",
        "helpdesk_celery_queue_length",
        "helpdesk_outbox_items",
        "helpdesk_websocket_connections",
        "helpdesk_ai_analyses_total",
        "helpdesk_ai_confidence_bucket",
        "helpdesk_ai_cost_usd_total",
        "helpdesk_search_duration_seconds_bucket",
        "helpdesk_emails_received_total",
        "helpdesk_emails_sent_total",
    ):
        assert wanted in used, wanted


# ---- Sentry --------------------------------------------------------------------------------

SENTRY_CHILD = """
import django
django.setup()
import sentry_sdk
from django.test import Client, override_settings

client = sentry_sdk.get_client()
print("integrations", sorted(client.integrations), flush=True)
with override_settings(ROOT_URLCONF="tests.observability.crash_urls", ALLOWED_HOSTS=["*"]):
    response = Client(raise_request_exception=False).get("/crash/", HTTP_COOKIE="sessionid=secret")
print("status", response.status_code, flush=True)
from config.asgi import application
print("websocket", type(application.application_mapping["websocket"]).__name__, flush=True)
sentry_sdk.flush(timeout=10)
"""


class _Envelopes(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        type(self).received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_with_a_dsn_errors_in_views_reach_sentry_without_personal_data():
    server = HTTPServer(("127.0.0.1", 0), _Envelopes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dsn = f"http://publickey@127.0.0.1:{server.server_port}/42"
    env = subprocess_env(SENTRY_DSN=dsn, SENTRY_ENVIRONMENT="test-env", DEBUG="true")
    env.pop("PYTEST_VERSION", None)
    try:
        child = subprocess.run(
            [sys.executable, "-c", SENTRY_CHILD],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.shutdown()

    assert child.returncode == 0, child.stderr[-3000:]
    assert "'celery'" in child.stdout and "'django'" in child.stdout, child.stdout
    assert "status 500" in child.stdout
    assert "websocket SentryAsgiMiddleware" in child.stdout  # Channels' consumers report too
    events = b"\n".join(_Envelopes.received).decode("utf-8", "replace")
    assert "ZeroDivisionError" in events and "test-env" in events
    assert "secret" not in events  # send_default_pii=False: no cookies


def test_without_a_dsn_sentry_stays_off():
    from config import sentry

    assert not sentry.enabled()
    sentinel = object()
    assert sentry.wrap_websocket(sentinel) is sentinel
