"""``/metrics``: the Prometheus scrape endpoint (the metrics are in :mod:`config.metrics`).

Who may read it:

- a request with ``Authorization: Bearer <METRICS_TOKEN>`` (when ``METRICS_TOKEN`` is set);
  a wrong token is answered **401**, whatever the address;
- a request without a token from an address in ``METRICS_ALLOWED_NETWORKS`` (CIDRs,
  default loopback only: ``127.0.0.1/32,::1/128``; empty: no address, only the token).

Anything else is answered **401** when a token could let it in, else **403**, with no metric
in the body. The address is the project's notion of the client
(``support.budget.client_address``): ``REMOTE_ADDR``, or the last address of the header
named by ``HELPDESK_CLIENT_ADDRESS_HEADER`` behind a proxy. A request that came through a
proxy (it carries ``X-Forwarded-For``, ``X-Real-IP`` or ``Forwarded``) while that setting
is empty is never let in by its address: the proxy's own address (often loopback) says
nothing about the client, and a header the proxy did not promise to overwrite proves
nothing either.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) the answer adds up the files of
every process; the live gauges of processes that are gone are dropped first. The queue
depths and the outbox are read at scrape time (:class:`ScrapeTimeCollector`); with Redis
or PostgreSQL away those series are absent, ``helpdesk_scrape_source_up`` says which, and
the answer is still 200.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from config import metrics
from config.embedded import pid_alive

logger = logging.getLogger(__name__)

#: Headers a reverse proxy adds; their presence means REMOTE_ADDR is the proxy's.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")
BROKER_TIMEOUT_SECONDS = 1.0


# ======================================================================================
# Who may read
# ======================================================================================


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(value, strict=False) for value in settings.METRICS_ALLOWED_NETWORKS
    ]


def client_address(request) -> str | None:
    """The client's address as far as it can be trusted (see the module docstring)."""
    if getattr(settings, "HELPDESK_CLIENT_ADDRESS_HEADER", ""):
        from support.budget import client_address as configured_client_address

        return configured_client_address(request)
    if any(request.META.get(header) for header in PROXY_HEADERS):
        return None
    return request.META.get("REMOTE_ADDR") or None


def _in_allowed_network(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in network for network in allowed_networks())


def _bearer(request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def access_status(request) -> int:
    """200 when ``request`` may read the metrics, else the status to answer with."""
    token, expected = _bearer(request), settings.METRICS_TOKEN
    if token is not None:
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            return 200
        return 401
    if _in_allowed_network(client_address(request)):
        return 200
    return 401 if expected else 403


def _refusal(status: int) -> HttpResponse:
    if status == 401:
        response = HttpResponse(
            "Authentication required: Authorization: Bearer <METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(
        "Metrics are not available to this address.\n",
        status=403,
        content_type="text/plain; charset=utf-8",
    )


# ======================================================================================
# What is read at scrape time
# ======================================================================================


def celery_queue_names() -> list[str]:
    """The default queue and every queue the task routes or declared queues name."""
    from config.celery import app

    names = {app.conf.task_default_queue or "celery"}
    names.update(queue.name for queue in (app.conf.task_queues or ()))
    routes = app.conf.task_routes
    for table in routes if isinstance(routes, list | tuple) else [routes]:
        if not isinstance(table, dict):
            continue  # a router function: its queues cannot be known in advance
        for route in table.values():
            queue = route.get("queue") if isinstance(route, dict) else None
            if queue:
                names.add(queue if isinstance(queue, str) else queue.name)
    return sorted(names)


def celery_queue_lengths() -> dict[str, int]:
    """Messages waiting per queue, summed over kombu's priority lists (raises when the
    broker does not answer in about a second)."""
    from config.celery import app

    queues = celery_queue_names()
    with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS
        )
        channel = connection.default_channel
        keys = {
            queue: [
                queue,
                *(f"{queue}{channel.sep}{step}" for step in channel.priority_steps if step),
            ]
            for queue in queues
        }
        pipe = channel.client.pipeline(transaction=False)
        for names in keys.values():
            for name in names:
                pipe.llen(name)
        lengths = iter(pipe.execute())
    return {queue: sum(next(lengths) for _ in names) for queue, names in keys.items()}


def outbox_depth() -> tuple[dict[str, int], float]:
    """Outbox items per open or failed status (one indexed GROUP BY), and the age in
    seconds of the oldest open one."""
    from django.db.models import Count, Min
    from django.utils import timezone

    from core.models import OutboxItem

    S = OutboxItem.Status
    statuses = [*OutboxItem.OPEN, S.FAILED]
    rows = (
        OutboxItem.objects.filter(status__in=statuses)
        .order_by()
        .values("status")
        .annotate(items=Count("id"), oldest=Min("created_at"))
    )
    counts = dict.fromkeys((str(status) for status in statuses), 0)
    oldest = None
    for row in rows:
        counts[row["status"]] = row["items"]
        if row["status"] in OutboxItem.OPEN and (oldest is None or row["oldest"] < oldest):
            oldest = row["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return counts, max(age, 0.0)


class ScrapeTimeCollector:
    """Queue depths and the outbox, read when Prometheus asks; a source that does not
    answer is reported down instead of failing the scrape."""

    def collect(self):
        up = GaugeMetricFamily(
            metrics.SCRAPE_SOURCE_UP,
            "1 when the source (broker, database) answered this scrape, else 0.",
            labels=["source"],
        )
        try:
            lengths = celery_queue_lengths()
        except Exception as error:
            logger.warning("metrics: broker queue lengths unavailable: %s", error)
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
            family = GaugeMetricFamily(
                metrics.CELERY_QUEUE_LENGTH,
                "Messages waiting in each Celery broker queue.",
                labels=["queue"],
            )
            for queue, length in lengths.items():
                family.add_metric([queue], length)
            yield family
        try:
            counts, oldest = outbox_depth()
        except Exception as error:
            logger.warning("metrics: outbox depth unavailable: %s", error)
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            family = GaugeMetricFamily(
                metrics.OUTBOX_ITEMS, "Outbox items by status (open and failed).", labels=["status"]
            )
            for status, items in counts.items():
                family.add_metric([status], items)
            yield family
            yield GaugeMetricFamily(
                metrics.OUTBOX_OLDEST_OPEN,
                "Age in seconds of the oldest open outbox item (0: none).",
                value=oldest,
            )
        yield up


# ======================================================================================
# The scrape
# ======================================================================================

_LIVE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def forget_dead_processes(path: str) -> None:
    """Drop the live gauges of processes that exited without saying so (a killed
    uvicorn worker or Celery child): their connections are gone too."""
    for name in os.listdir(path):
        found = _LIVE_FILE.match(name)
        if found and not pid_alive(int(found.group(1))):
            metrics.mark_process_dead(int(found.group(1)))


def scrape() -> bytes:
    """The metrics of every process (or of this one), then those read now."""
    registry = CollectorRegistry()
    path = metrics.multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        forget_dead_processes(path)
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(metrics.REGISTRY)
    registry.register(ScrapeTimeCollector())
    return generate_latest(registry)


@never_cache
@require_GET
def metrics_endpoint(request):
    status = access_status(request)
    if status != 200:
        return _refusal(status)
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
