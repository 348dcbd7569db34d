"""Production smoke crawl: DEBUG=false, the Dockerfile's collected static files, uvicorn
behind a simulated TLS proxy, the demo data, and headless Chromium visiting every page of
every role. No page may answer 5xx, no resource may fail, no console may show an error."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import ARTIFACTS, BASE_DIR
from tests.production.conftest import production_env, production_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROXY_HEADERS = {"X-Forwarded-Proto": "https"}  # what a TLS-terminating proxy adds


@dataclass
class Crawl:
    """Every page visited, what it answered, and what went wrong on the way."""

    statuses: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@pytest.fixture
def demo(transactional_db):
    """The demo data, loaded as the README's production trial does (a production process,
    so the passwords get the production hasher), committed for the server to read."""
    from config.celery import app

    refused = manage("load_demo_data")
    assert refused.returncode != 0
    assert "pass --force" in refused.stderr

    started = time.monotonic()
    loaded = manage("load_demo_data", "--force")
    seconds = time.monotonic() - started
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "customer-demo" in loaded.stdout  # the logins it printed
    yield {"seconds": seconds}
    app.control.purge()  # the tasks it queued (no worker here) must not reach later tests


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=production_env(EMAIL_URL="consolemail://"),
        capture_output=True,
        text=True,
        timeout=180,
    )


def _open_page(browser, server, crawl: Crawl, role: str):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, extra_http_headers=PROXY_HEADERS
    )
    page = context.new_page()
    state = {"url": None, "expected": 200}

    def on_console(message):
        if message.type != "error":
            return
        # The browser reports a page's own 4xx as a console error; expected ones are fine.
        own = message.location.get("url") == state["url"] and state["expected"] != 200
        if own and "Failed to load resource" in message.text:
            return
        crawl.problems.append(
            f"{role} {state['url']}: console error: {message.text} ({message.location['url']})"
        )

    def on_response(response):
        is_page = response.request.is_navigation_request() and response.url == state["url"]
        if response.status >= 500 or (response.status >= 400 and not is_page):
            crawl.problems.append(f"{role} {state['url']}: {response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: crawl.problems.append(f"{role} {state['url']}: {error}"))
    page.on("response", on_response)

    def on_request_failed(request):
        # ERR_ABORTED: cancelled because the crawl moved on (a favicon fetched after load);
        # a resource the server failed answers a status, caught above.
        if request.failure != "net::ERR_ABORTED":
            crawl.problems.append(f"{role} {state['url']}: {request.url}: {request.failure}")

    page.on("requestfailed", on_request_failed)

    def visit(path: str, expected: int | set[int] = 200) -> int:
        """Open ``path``; its status must be ``expected`` (one, or one of a set)."""
        state.update(url=f"{server.url}{path}", expected=expected)
        response = page.goto(state["url"], wait_until="load")
        status = response.status if response else 0
        crawl.statuses[f"{role} {path}"] = status
        if path == "/api/docs/":  # Swagger UI fetches the schema, then draws it
            page.wait_for_selector(".swagger-ui .opblock")
        if page.locator("[data-live-ticket][data-live-open=true], [data-feed]").count():
            try:  # the page's WebSocket is up (or a console error says why not)
                page.wait_for_selector(
                    "[data-live-indicator][data-state=live]", state="attached", timeout=10_000
                )
            except PlaywrightTimeoutError:
                crawl.problems.append(f"{role} {path}: live updates never connected")
        if status not in ({expected} if isinstance(expected, int) else expected):
            crawl.problems.append(f"{role} {path}: answered {status}, expected {expected}")
        return status

    return context, page, visit


def _sign_in(page, server, username: str) -> None:
    page.goto(f"{server.url}/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", f"{username}-demo")
    page.click("form [type=submit]")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, f"{username}: {page.inner_text('main')}"


def _admin_pages() -> list[tuple[str, str]]:
    """(model label, path) of each registered model's changelist and first change page."""
    pages = []
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        pages.append((model._meta.label, reverse("admin:{}_{}_changelist".format(*info))))
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            change = reverse("admin:{}_{}_change".format(*info), args=[quote(obj.pk)])
            pages.append((model._meta.label, change))
    return pages


@pytest.mark.long(120)
def test_every_page_of_every_role_in_production(browser, collected_static, demo):
    assert collected_static.result.returncode == 0, collected_static.result.stderr
    from feedback.models import FeatureRequest
    from knowledge.models import Article, Category
    from support.models import OPEN_STATUSES, Ticket

    article = Article.objects.filter(status="published").order_by("pk").first()
    category = article.category
    request = FeatureRequest.objects.order_by("pk").first()
    own_ticket = (
        Ticket.objects.filter(requester__username="customer", status__in=OPEN_STATUSES)
        .order_by("pk")
        .first()
    )
    colleague_ticket = Ticket.objects.filter(requester__username="customer").last()
    assert article and category and request and own_ticket
    assert Category.objects.exists()

    public = [
        "/",
        "/help/",
        f"/help/c/{category.slug}/",
        f"/help/a/{article.slug}/",
        "/help/search/?q=password",
        "/roadmap/",
        f"/roadmap/{request.pk}/",
        "/api/docs/",
    ]
    customer_pages = [
        *public,
        "/tickets/",
        "/tickets/new/",
        f"/tickets/{own_ticket.reference}/",
        "/roadmap/new/",
    ]
    dashboards = [
        "/dashboards/",
        "/dashboards/ai/",
        "/dashboards/agents/",
        "/dashboards/knowledge/",
    ]
    crawl = Crawl()
    started = time.monotonic()
    with production_server(collected_static.root) as server:
        server_started = time.monotonic() - started

        # Anonymous: the public pages, the sign-in and sign-up forms, the 404 page, and
        # the pages behind a sign-in (a redirect to the login form, answered 200).
        context, page, visit = _open_page(browser, server, crawl, "anonymous")
        for path in [*public, "/accounts/login/", "/accounts/signup/", "/tickets/", "/admin/"]:
            visit(path)
        visit("/no-such-page/", expected=404)
        page.screenshot(path=ARTIFACTS / "production-404.png", full_page=True)
        assert "couldn" in page.inner_text("h1")  # our page, not the server's default
        visit("/dashboards/")  # to the login form
        assert "/accounts/login/" in page.url
        # Secure cookies over plain http://localhost: Chromium treats localhost as a secure
        # context and keeps them (checked, not assumed: the sign-in below depends on it).
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["csrftoken"]["secure"] is True
        context.close()

        # A customer, then an organization admin (who also sees a colleague's ticket).
        for role, username, pages in [
            ("customer", "customer", customer_pages),
            ("org admin", "dana", [*customer_pages, f"/tickets/{colleague_ticket.reference}/"]),
        ]:
            context, page, visit = _open_page(browser, server, crawl, role)
            _sign_in(page, server, username)
            session = {c["name"]: c for c in context.cookies()}["sessionid"]
            assert session["secure"] and session["httpOnly"], session
            for path in pages:
                visit(path)
            visit("/dashboards/", expected=403)
            visit("/admin/")  # the admin's own sign-in form: customers are not staff
            visit("/no-such-page/", expected=404)
            if role == "customer":
                visit(f"/tickets/{own_ticket.reference}/")
                page.screenshot(path=ARTIFACTS / "production-ticket.png", full_page=True)
            context.close()

        # Staff: the portal, the admin index and apps, every registered model's changelist
        # and its first change page (a 403 where the role may not see it), the live feed.
        admin_pages = _admin_pages()
        apps = sorted({label.split(".")[0] for label, _ in admin_pages})
        seen_by_staff: set[str] = set()
        for role, username, extra in [
            ("agent", "agent", []),
            ("manager", "manager", dashboards),
        ]:
            context, page, visit = _open_page(browser, server, crawl, role)
            _sign_in(page, server, username)
            for path in [*public, *extra, "/admin/", "/admin/support/ticket/feed/"]:
                visit(path)
            for app_label in apps:
                visit(f"/admin/{app_label}/", expected={200, 404})  # 404: no model of it theirs
            for _label, path in admin_pages:
                if visit(path, expected={200, 403}) == 200:
                    seen_by_staff.add(path)
            if role == "agent":
                visit("/dashboards/", expected=403)  # agents work in the admin only
            if role == "manager":
                visit("/dashboards/")
                page.wait_for_selector("figure[data-drawn=true]")
                page.screenshot(path=ARTIFACTS / "production-dashboard.png", full_page=True)
                visit("/admin/support/ticket/")
                page.screenshot(path=ARTIFACTS / "production-admin-tickets.png", full_page=True)
            context.close()

        # What no agent or manager may see (users, groups, tokens) a superuser does.
        context, page, visit = _open_page(browser, server, crawl, "superuser")
        _sign_in(page, server, "admin")
        for _label, path in admin_pages:
            if path not in seen_by_staff:
                visit(path)
        context.close()
        log = server.log_text()
        crawled_in = time.monotonic() - started

    print(
        f"\ndemo data {demo['seconds']:.1f}s, server up in {server_started:.1f}s, "
        f"{len(crawl.statuses)} pages crawled in {crawled_in:.1f}s"
    )
    assert not crawl.problems, "\n".join([*crawl.problems, log[-5000:]])
    errors = [
        line
        for line in log.splitlines()
        if line.startswith("{") and json.loads(line)["level"] in {"ERROR", "CRITICAL"}
    ]
    assert not errors, "\n".join(errors)[-5000:]
    assert reverse("admin:support_ticket_changelist") in seen_by_staff
