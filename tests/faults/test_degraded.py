"""Degraded modes against the real servers of the fault stack (tests/faults/conftest.py).

- Redis (Valkey) stopped: what needs only PostgreSQL keeps working. Reads, sign-in and
  ticket creation through the API and the portal answer 2xx (or a clear 503), never 500,
  each within about two seconds; rate limits are off and the log says so; when Valkey is
  back, the same server serves as before.
- PostgreSQL restarted under a trickle of requests: while it is away every answer is a
  503 (JSON on the API, a plain page elsewhere), never a 500; once it is back no request
  fails on a stale pooled connection, and the first request after readiness is a 200.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.faults.conftest import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.faults]

#: A request must answer within this while a server is away (connect timeouts are 0.5-1 s).
MAX_SECONDS = 2.0
THROTTLE_WARNING = "rate limits are off: the cache is unreachable"
LIVE_UPDATE_FAILED = "live update not sent"


def timed(client: httpx.Client, method: str, path: str, **kwargs) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = client.request(method, path, **kwargs)
    return response, time.perf_counter() - started


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def portal_login(client: httpx.Client, username: str) -> None:
    """Sign in through the real login form (session cookie, CSRF)."""
    page = client.get("/accounts/login/")
    assert page.status_code == 200, page.text[:500]
    response = client.post(
        "/accounts/login/",
        data={
            "login": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": csrf_of(page.text),
        },
    )
    assert response.status_code == 302, response.text[:500]


def portal_ticket_create(client: httpx.Client, subject: str) -> tuple[httpx.Response, float]:
    form = client.get("/tickets/new/")
    assert form.status_code == 200, form.text[:500]
    return timed(
        client,
        "POST",
        "/tickets/new/",
        data={
            "subject": subject,
            "type": "general",
            "description": "The export button spins forever.",
            "csrfmiddlewaretoken": csrf_of(form.text),
        },
    )


def assert_not_500(response: httpx.Response, seconds: float, what: str, logs: str) -> None:
    assert response.status_code != 500, f"{what}: 500\n{response.text[:800]}\n{logs[-3000:]}"
    assert seconds < MAX_SECONDS, f"{what}: took {seconds:.2f}s"
    if response.status_code == 503:
        assert response.headers["content-type"].startswith("application/json"), what
        assert response.json()["code"] == "service_unavailable", what
    else:
        assert 200 <= response.status_code < 400, f"{what}: {response.status_code}"


def test_with_valkey_stopped_the_api_and_the_portal_keep_working(fault_stack, record_property):
    token = fault_stack.token("redis-down-customer")
    api = httpx.Client(base_url=fault_stack.url, timeout=15)
    portal = httpx.Client(base_url=fault_stack.url, timeout=15)
    portal_login(portal, "redis-down-customer")
    fault_stack.wait_ready()

    fault_stack.redis_stop()
    try:
        readiness = api.get("/health/ready/")
        assert readiness.status_code == 503
        assert readiness.json()["components"]["redis"]["status"] == "down"

        latencies = {}
        response, latencies["anonymous read"] = timed(api, "GET", "/api/articles/")
        assert_not_500(
            response, latencies["anonymous read"], "GET /api/articles/", fault_stack.logs("web")
        )
        assert response.status_code == 200

        response, latencies["token"] = timed(
            api,
            "POST",
            "/api/auth/token/",
            json={"username": "redis-down-customer", "password": PASSWORD},
        )
        assert_not_500(
            response, latencies["token"], "POST /api/auth/token/", fault_stack.logs("web")
        )
        assert response.json()["token"] == token

        response, latencies["api ticket"] = timed(
            api,
            "POST",
            "/api/tickets/",
            headers={"Authorization": f"Token {token}"},
            json={"subject": "Opened while Redis is down", "description": "Through the API."},
        )
        assert_not_500(
            response, latencies["api ticket"], "POST /api/tickets/", fault_stack.logs("web")
        )
        assert response.status_code == 201, response.text[:500]
        api_reference = response.json()["reference"]

        response, latencies["portal ticket"] = portal_ticket_create(portal, "Opened on the portal")
        assert_not_500(
            response, latencies["portal ticket"], "POST /tickets/new/", fault_stack.logs("web")
        )
        assert response.status_code == 302
        portal_reference = response.headers["location"].rstrip("/").rsplit("/", 1)[-1]

        # Both tickets are in the database, whatever became of the follow-up work.
        rows = fault_stack.sql(
            "SELECT reference FROM support_ticket WHERE reference = ANY(%s)",
            [[api_reference, portal_reference]],
        )
        assert len(rows) == 2
        assert THROTTLE_WARNING in fault_stack.logs("web")
        worst = max(latencies.values())
        record_property("redis_down_max_latency_s", round(worst, 3))
        print(f"\nRedis down, latencies (s): { {k: round(v, 3) for k, v in latencies.items()} }")
    finally:
        fault_stack.redis_start()

    # Back: the same server process serves with Redis again (cache, throttles, readiness),
    # and live updates reach the channel layer again (its connections are re-opened).
    fault_stack.wait_ready(timeout=15)
    not_sent = fault_stack.logs("web").count(LIVE_UPDATE_FAILED)
    assert not_sent >= 2  # one per ticket opened while Valkey was down
    response = api.get("/api/articles/")
    assert response.status_code == 200
    response, seconds = portal_ticket_create(portal, "Opened after Redis came back")
    assert response.status_code == 302 and seconds < MAX_SECONDS
    assert fault_stack.logs("web").count(LIVE_UPDATE_FAILED) == not_sent


@dataclass
class Sample:
    path: str
    started: float
    ended: float
    status: int
    content_type: str
    code: str | None
    retry_after: str | None


@dataclass
class RequestLoop:
    """Threads firing one request each every ~100 ms, recording what came back."""

    url: str
    requests: list[tuple[str, dict]]
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self, path: str, headers: dict) -> None:
        with httpx.Client(base_url=self.url, timeout=30, headers=headers) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get(path)
                except httpx.HTTPError as error:  # recorded as status 0: a test failure
                    self.samples.append(
                        Sample(path, started, time.monotonic(), 0, repr(error), None, None)
                    )
                else:
                    kind = response.headers.get("content-type", "")
                    code = (
                        response.json().get("code") if kind.startswith("application/json") else None
                    )
                    if response.status_code == 503 and kind.startswith("text/html"):
                        code = "page" if "briefly unavailable" in response.text else None
                    self.samples.append(
                        Sample(
                            path,
                            started,
                            time.monotonic(),
                            response.status_code,
                            kind,
                            code,
                            response.headers.get("retry-after"),
                        )
                    )
                self._stop.wait(0.1)

    def __enter__(self):
        for path, headers in self.requests:
            thread = threading.Thread(target=self._run, args=(path, headers), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def first_ok_after(self, path: str, moment: float) -> Sample | None:
        return next(
            (s for s in self.samples if s.path == path and s.started >= moment and s.status == 200),
            None,
        )


@pytest.mark.long(25)
def test_postgres_restart_answers_503_while_away_and_no_stale_connection_after(fault_stack):
    token = fault_stack.token("pg-restart-customer")
    portal = httpx.Client(base_url=fault_stack.url, timeout=30)
    portal_login(portal, "pg-restart-customer")
    session = {"Cookie": "; ".join(f"{k}={v}" for k, v in portal.cookies.items())}
    api_headers = {"Authorization": f"Token {token}"}
    fault_stack.wait_ready()

    # 1. A quick restart with nobody asking: the pooled connections all went stale. Warm
    # the pool first, so there are several of them.
    def get_all(paths, headers):
        with httpx.Client(base_url=fault_stack.url, timeout=30, headers=headers) as client:
            return [client.get(path).status_code for path in paths]

    warm = [
        threading.Thread(target=get_all, args=(["/api/articles/"] * 5, api_headers))
        for _ in range(4)
    ]
    for thread in warm:
        thread.start()
    for thread in warm:
        thread.join()
    back = fault_stack.postgres_restart(down_seconds=1.0)
    first = httpx.get(f"{fault_stack.url}/api/articles/", headers=api_headers, timeout=30)
    first_after_restart = time.monotonic() - back
    assert first.status_code == 200, first.text[:500]
    statuses: list[int] = []
    burst = [
        threading.Thread(
            target=lambda: statuses.extend(
                get_all(["/api/articles/", "/tickets/"] * 3, {**api_headers, **session})
            )
        )
        for _ in range(4)
    ]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join()
    assert statuses == [200] * 24, statuses

    # 2. An outage longer than the pool's wait (DATABASE_POOL_TIMEOUT, 3 s), under a trickle
    # of requests: the API with a token (DRF authentication reads the database), a page
    # with the session cookie (the session and the user are read in the view), and a
    # missing page with the session (the 404 page reads the user outside any view).
    loop = RequestLoop(
        fault_stack.url,
        [("/api/articles/", api_headers), ("/tickets/", session), ("/no-such-page/", session)],
    )
    with loop:
        time.sleep(1.0)
        stopped = time.monotonic()
        fault_stack.postgres_stop()
        time.sleep(8.0)
        fault_stack.postgres_start()
        back = time.monotonic()
        ready_after = fault_stack.wait_ready(timeout=30)
        after_ready = httpx.get(f"{fault_stack.url}/api/articles/", headers=api_headers, timeout=30)
        time.sleep(1.5)
    assert after_ready.status_code == 200, after_ready.text[:500]

    samples = loop.samples
    assert not [s for s in samples if s.status not in {200, 404, 503}], (
        [s for s in samples if s.status not in {200, 404, 503}],
        fault_stack.logs("web")[-4000:],
    )
    timeline = (
        "\n".join(
            f"{s.path:16} {s.started - stopped:+6.2f}s {s.ended - stopped:+6.2f}s"
            f" {s.status} {s.code}"
            for s in samples
        )
        + f"\nPostgreSQL back at +{back - stopped:.2f}s"
    )
    during = [s for s in samples if s.started >= stopped and s.ended < back]
    assert {s.path for s in during} == {"/api/articles/", "/tickets/", "/no-such-page/"}, timeline
    for sample in during:
        assert sample.status == 503, sample
        assert sample.retry_after, sample
        if sample.path.startswith("/api/"):
            assert sample.content_type.startswith("application/json"), sample
            assert sample.code == "service_unavailable", sample
        else:
            assert sample.content_type.startswith("text/html"), sample
            assert sample.code == "page", sample
    settled = [s for s in samples if s.started > back + ready_after]
    assert settled and all(s.status in {200, 404} for s in settled), settled
    firsts = {path: loop.first_ok_after(path, back) for path in ("/api/articles/", "/tickets/")}
    print(
        f"\nPostgreSQL: first 200 after a 1 s restart {first_after_restart:.2f}s; after the "
        f"8 s outage: ready {ready_after:.2f}s, first 200 "
        + ", ".join(f"{p} {s.ended - back:.2f}s" for p, s in firsts.items() if s)
        + f"; 503s during the outage: {len(during)}"
    )
