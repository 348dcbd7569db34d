"""Prometheus metrics: every metric the product exports, defined here and nowhere else.

Served at ``/metrics`` (:func:`config.metrics_view.metrics_endpoint`) in the Prometheus
text format. All names start with ``helpdesk_``; ``deploy/grafana/helpdesk.json`` charts
them.

Web requests (:class:`MetricsMiddleware`; ``route`` is the URL pattern, e.g.
``/api/tickets/<str:reference>/``, never the raw path, and ``unmatched`` for a request no
pattern answered):

- ``helpdesk_http_requests_total{route, method, status}``: requests answered.
- ``helpdesk_http_request_duration_seconds{route, method}``: histogram of their latency.
- ``helpdesk_db_queries_total{route}``: SQL queries the requests ran (divide by the
  requests for queries per request).
- ``helpdesk_db_query_duration_seconds``: histogram of those queries' durations.

Celery (signals, :func:`connect_celery_signals`; recorded in the worker's processes, so
served by the web processes when they share ``PROMETHEUS_MULTIPROC_DIR`` with the worker
(one machine, ``make run``), else by the worker itself on ``HELPDESK_WORKER_METRICS_PORT``):

- ``helpdesk_celery_tasks_total{task, outcome}``: tasks run, ``outcome`` one of
  ``success``, ``failure``, ``retry`` (or Celery's state in lower case for the rare others).
- ``helpdesk_celery_task_duration_seconds{task}``: histogram of their run time.

Read at scrape time (:class:`config.metrics_view.ScrapeTimeCollector`), never stored:

- ``helpdesk_celery_queue_length{queue}``: messages waiting in each broker queue (Redis
  ``LLEN``; the default queue ``celery`` and every queue named in the task routes).
- ``helpdesk_outbox_items{status}``: open (``pending``, ``sent``, ``running``) and
  ``failed`` outbox items (``core.models.OutboxItem``); ``done`` rows are history, not
  depth, and are not counted.
- ``helpdesk_outbox_oldest_open_seconds``: age of the oldest open outbox item (0: none).
- ``helpdesk_scrape_source_up{source}``: 1 when ``broker`` (Redis) or ``database``
  answered this scrape, 0 when not; the metrics that source feeds are then absent, and
  ``/metrics`` still answers 200.

Live connections (``support.consumers``):

- ``helpdesk_websocket_connections{consumer}``: open WebSocket connections (``ticket``,
  ``feed``, ``chat``), summed over the live web processes.
- ``helpdesk_websocket_connections_opened_total{consumer}``: connections accepted.

The AI agent (``support.ai.pipeline``, ``support.services.copilot``):

- ``helpdesk_ai_analyses_total{decision, outcome}``: analyses finished; ``decision`` is the
  planner's (``resolve``, ``ask``, ``escalate``; ``none`` when it failed before deciding),
  ``outcome`` what became of the ticket (``resolved``, ``asked``, ``escalated``,
  ``superseded`` by a person, ``failed``: the analysis broke and people have the ticket).
- ``helpdesk_ai_confidence{decision}``: histogram of the combined confidence (0..1).
- ``helpdesk_ai_tokens_total{model, direction, use}``: tokens, ``direction`` ``input`` or
  ``output``, ``use`` ``analysis`` or ``copilot``.
- ``helpdesk_ai_cost_usd_total{model, use}``: what they cost (the price table in settings).
- ``helpdesk_ai_model_latency_seconds{model, use}``: histogram of the provider's answer time.
- ``helpdesk_ai_copilot_calls_total{kind, outcome}``: copilot calls (``ok`` / ``failed``).

Search and email:

- ``helpdesk_search_duration_seconds{kind}``: histogram of ``knowledge.search.search``
  (``api``, ``portal``, ``agent``: the AI agent and the copilot, ``other``).
- ``helpdesk_emails_received_total{door, outcome}``: inbound mail by door (``smtp``,
  ``imap``, ``webhook``) and what it became (``created``, ``appended``, ``follow_up``,
  ``ignored``, ``spam``, ``refused``, ``received``: kept for people; ``error``: raised).
- ``helpdesk_emails_sent_total{template, outcome}``: ticket mail (``support.notifications``)
  by template, ``sent`` or ``failed``.

Several processes (uvicorn ``--workers N``, Celery's prefork children): with
``PROMETHEUS_MULTIPROC_DIR`` set in their environment *before they start*, each process
writes its values to files there and ``/metrics`` adds them up (prometheus-client's
multiprocess mode); the folder must be emptied when the whole stack starts (``make run``
does). Without it, each process serves only its own values, right for one process.

Recording never breaks what it measures: every helper here swallows and logs its errors.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Where the metrics of this process live in single-process mode (multiprocess mode reads
#: the files instead; see :mod:`config.metrics_view`).
REGISTRY = CollectorRegistry(auto_describe=True)
UNMATCHED = "unmatched"
METRICS_PATH = "/metrics"

# Latency buckets in seconds: web requests and tasks span a few ms to tens of seconds.
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_QUERY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_SEARCH = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
_CONFIDENCE = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


# ======================================================================================
# The metrics
# ======================================================================================

HTTP_REQUESTS = Counter(
    "helpdesk_http_requests_total",
    "HTTP requests answered, by URL pattern, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "helpdesk_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern and method.",
    ["route", "method"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
DB_QUERIES = Counter(
    "helpdesk_db_queries_total",
    "SQL queries run while answering HTTP requests, by URL pattern.",
    ["route"],
    registry=REGISTRY,
)
DB_QUERY_DURATION = Histogram(
    "helpdesk_db_query_duration_seconds",
    "Duration of the SQL queries run while answering HTTP requests.",
    buckets=_QUERY,
    registry=REGISTRY,
)
CELERY_TASKS = Counter(
    "helpdesk_celery_tasks_total",
    "Celery tasks run, by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
    registry=REGISTRY,
)
CELERY_TASK_DURATION = Histogram(
    "helpdesk_celery_task_duration_seconds",
    "Run time of Celery tasks, by task name.",
    ["task"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
WEBSOCKET_CONNECTIONS = Gauge(
    "helpdesk_websocket_connections",
    "Open WebSocket connections, by consumer (ticket, feed, chat).",
    ["consumer"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
WEBSOCKET_OPENED = Counter(
    "helpdesk_websocket_connections_opened_total",
    "WebSocket connections accepted, by consumer.",
    ["consumer"],
    registry=REGISTRY,
)
AI_ANALYSES = Counter(
    "helpdesk_ai_analyses_total",
    "AI analyses finished, by the planner's decision and what became of the ticket.",
    ["decision", "outcome"],
    registry=REGISTRY,
)
AI_CONFIDENCE = Histogram(
    "helpdesk_ai_confidence",
    "Combined confidence of the AI's analyses (0..1), by decision.",
    ["decision"],
    buckets=_CONFIDENCE,
    registry=REGISTRY,
)
AI_TOKENS = Counter(
    "helpdesk_ai_tokens_total",
    "LLM tokens, by model, direction (input, output) and use (analysis, copilot).",
    ["model", "direction", "use"],
    registry=REGISTRY,
)
AI_COST = Counter(
    "helpdesk_ai_cost_usd_total",
    "LLM cost in US dollars (the settings' price table), by model and use.",
    ["model", "use"],
    registry=REGISTRY,
)
AI_MODEL_LATENCY = Histogram(
    "helpdesk_ai_model_latency_seconds",
    "Time the LLM provider took to answer, by model and use.",
    ["model", "use"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
AI_COPILOT_CALLS = Counter(
    "helpdesk_ai_copilot_calls_total",
    "Agents' copilot calls, by kind and outcome (ok, failed).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
SEARCH_DURATION = Histogram(
    "helpdesk_search_duration_seconds",
    "Time of a knowledge-base search, by caller (api, portal, agent, other).",
    ["kind"],
    buckets=_SEARCH,
    registry=REGISTRY,
)
EMAILS_RECEIVED = Counter(
    "helpdesk_emails_received_total",
    "Inbound emails, by door (smtp, imap, webhook) and outcome.",
    ["door", "outcome"],
    registry=REGISTRY,
)
EMAILS_SENT = Counter(
    "helpdesk_emails_sent_total",
    "Ticket emails sent, by template and outcome (sent, failed).",
    ["template", "outcome"],
    registry=REGISTRY,
)

#: Computed when scraped (:class:`config.metrics_view.ScrapeTimeCollector`).
CELERY_QUEUE_LENGTH = "helpdesk_celery_queue_length"
OUTBOX_ITEMS = "helpdesk_outbox_items"
OUTBOX_OLDEST_OPEN = "helpdesk_outbox_oldest_open_seconds"
SCRAPE_SOURCE_UP = "helpdesk_scrape_source_up"
SCRAPE_TIME_METRICS = (CELERY_QUEUE_LENGTH, OUTBOX_ITEMS, OUTBOX_OLDEST_OPEN, SCRAPE_SOURCE_UP)


def metric_names() -> set[str]:
    """Every metric family this module defines (the names PromQL may use, with the
    ``_total``, ``_bucket``, ``_sum``, ``_count`` series their types add)."""
    names = set(SCRAPE_TIME_METRICS)
    for family in REGISTRY.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


# ======================================================================================
# Recording: never raises
# ======================================================================================


def _safe(function):
    """Metrics must never break what they measure: log and carry on."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception:
            logger.warning("recording metric %s failed", function.__name__, exc_info=True)
            return None

    return wrapper


@_safe
def observe_request(*, route: str, method: str, status: int, seconds: float, queries: int):
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_DURATION.labels(route, method).observe(seconds)
    if queries:
        DB_QUERIES.labels(route).inc(queries)


@_safe
def websocket_opened(consumer: str) -> None:
    WEBSOCKET_OPENED.labels(consumer).inc()
    WEBSOCKET_CONNECTIONS.labels(consumer).inc()


@_safe
def websocket_closed(consumer: str) -> None:
    WEBSOCKET_CONNECTIONS.labels(consumer).dec()


@_safe
def observe_llm_call(*, model: str, use: str, input_tokens, output_tokens, cost, latency_ms):
    model = model or "unknown"
    AI_TOKENS.labels(model, "input", use).inc(max(int(input_tokens or 0), 0))
    AI_TOKENS.labels(model, "output", use).inc(max(int(output_tokens or 0), 0))
    AI_COST.labels(model, use).inc(max(float(cost or 0), 0.0))
    if latency_ms:
        AI_MODEL_LATENCY.labels(model, use).observe(latency_ms / 1000)


@_safe
def observe_ai_analysis(*, outcome: str, plan=None) -> None:
    """An analysis of ``support.ai.pipeline`` ended with ``outcome``; ``plan`` (a
    ``support.ai.planner.Plan``) when the planner got as far as deciding."""
    decision = getattr(plan, "decision", None) or "none"
    AI_ANALYSES.labels(decision, outcome).inc()
    if plan is None:
        return
    if plan.confidence is not None:
        AI_CONFIDENCE.labels(decision).observe(float(plan.confidence))
    completion = plan.completion
    if completion is not None:
        from integrations.llm import cost_usd

        observe_llm_call(
            model=completion.model,
            use="analysis",
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cost=cost_usd(completion.model, completion.input_tokens, completion.output_tokens),
            latency_ms=completion.latency_ms,
        )


@_safe
def observe_copilot_call(
    *, kind: str, model: str, input_tokens, output_tokens, cost, latency_ms, failed: bool
) -> None:
    AI_COPILOT_CALLS.labels(kind, "failed" if failed else "ok").inc()
    if not failed:
        observe_llm_call(
            model=model,
            use="copilot",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=cost,
            latency_ms=latency_ms,
        )


@_safe
def observe_search(kind: str, seconds: float) -> None:
    SEARCH_DURATION.labels(kind).observe(seconds)


@_safe
def email_received(*, door: str, outcome: str) -> None:
    EMAILS_RECEIVED.labels(door, outcome).inc()


@_safe
def email_sent(*, template: str, failed: bool = False) -> None:
    EMAILS_SENT.labels(template, "failed" if failed else "sent").inc()


# ======================================================================================
# Web requests
# ======================================================================================


def route_of(request) -> str:
    """The URL pattern that answered ``request`` (bounded label values), or ``unmatched``."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) if match is not None else None
    if not route:
        return UNMATCHED
    return "/" + route.replace("^", "").replace("$", "")


class _QueryCounter:
    """``connection.execute_wrapper``: counts and times the queries of one request."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            with contextlib.suppress(Exception):
                DB_QUERY_DURATION.observe(time.perf_counter() - started)


class MetricsMiddleware:
    """Counts and times each request by URL pattern, method and status, with its SQL
    queries. ``/metrics`` itself is not measured (a scrape would count itself)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == METRICS_PATH:
            return self.get_response(request)
        from django.db import connections

        counter = _QueryCounter()
        started = time.perf_counter()
        with contextlib.ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(counter))
            response = self.get_response(request)
        observe_request(
            route=route_of(request),
            method=request.method if request.method in _METHODS else "other",
            status=response.status_code,
            seconds=time.perf_counter() - started,
            queries=counter.count,
        )
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# ======================================================================================
# Celery
# ======================================================================================

_CELERY_OUTCOMES = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}


def connect_celery_signals() -> None:
    """Count and time every task; forget the live values of a prefork child that exits;
    serve the worker's own metrics when ``HELPDESK_WORKER_METRICS_PORT`` asks."""
    from celery.signals import task_postrun, task_prerun, worker_init, worker_process_shutdown

    @worker_init.connect(weak=False)
    def _serve(**_):
        from django.conf import settings

        if settings.HELPDESK_WORKER_METRICS_PORT:
            serve_worker_metrics(
                port=settings.HELPDESK_WORKER_METRICS_PORT,
                addr=settings.HELPDESK_WORKER_METRICS_ADDR,
            )

    @task_prerun.connect(weak=False)
    def _started(task=None, **_):
        if task is not None:
            task.request._helpdesk_metrics_started = time.perf_counter()

    @task_postrun.connect(weak=False)
    def _finished(task=None, state=None, **_):
        if task is not None:
            _observe_task(task, state)

    @worker_process_shutdown.connect(weak=False)
    def _child_exits(pid=None, **_):
        mark_process_dead(pid or os.getpid())


@_safe
def _observe_task(task, state) -> None:
    name = task.name or "unknown"
    outcome = _CELERY_OUTCOMES.get(state or "", (state or "unknown").lower())
    CELERY_TASKS.labels(name, outcome).inc()
    started = getattr(task.request, "_helpdesk_metrics_started", None)
    if started is not None:
        CELERY_TASK_DURATION.labels(name).observe(time.perf_counter() - started)


@_safe
def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges (multiprocess mode; nothing otherwise)."""
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)


def serve_worker_metrics(*, port: int, addr: str = "127.0.0.1"):
    """A Celery worker's own ``/metrics`` (its prefork children added up through
    ``PROMETHEUS_MULTIPROC_DIR``), for a worker that shares no folder with the web
    processes (another container or machine). No token here: bind it to an address only
    Prometheus reaches. Returns the server (``shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    registry = REGISTRY
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    logger.info("worker metrics served on %s:%s", addr, port)
    return server
