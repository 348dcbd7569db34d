"""Security headers (Content-Security-Policy, Permissions-Policy), pages that keep to the
policy in a real Chromium, Markdown images from other sites shown as links, and revenue
(MRR) kept from everyone in admin but managers."""

import re
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.test import Client

from analytics.demo import load_history
from feedback import services as feedback
from support import services
from tests.conftest import ARTIFACTS
from tests.factories import CustomerFactory, OrganizationFactory

PAGES = ["/", "/help/", "/roadmap/", "/accounts/login/", "/api/docs/"]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def directives(header: str) -> dict[str, str]:
    parts = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in parts}


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_the_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == policy["script-src"] == "'self'"
    assert policy["style-src"].startswith("'self'") and "unsafe-inline" not in policy["style-src"]
    assert policy["img-src"] == "'self' data:"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == policy["object-src"] == "'none'"
    assert policy["base-uri"] == policy["form-action"] == "'self'"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    html = response.content.decode()
    # Nothing inline that the policy would refuse: scripts come from files.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+=\"", html)
    assert not re.search(r"<[a-z][^>]*\sstyle=\"", html)


@pytest.mark.django_db
def test_the_api_docs_settings_come_as_a_script_file(client):
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


# ---- Chromium: no page is refused anything -----------------------------------------------


def _violations(page) -> list[str]:
    seen: list[str] = []

    def on_console(message):
        # Chromium reports each refusal as a console error: "Refused to load/apply/…
        # because it violates the following Content Security Policy directive: …".
        if "Refused to" in message.text or "Content Security Policy" in message.text:
            seen.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.append(f"{page.url}: {error}"))
    return seen


def _sign_in(context, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_chromium_loads_our_pages_without_a_policy_violation(
    browser, live_server, kb, customer, agent, manager, ticket
):
    load_history(days=8)
    article = next(iter(kb.values()))
    feature = feedback.request_submit(author=customer, title="Dark mode")
    services.message_add(ticket=ticket, author=agent, body="Looking into it.\nLine two.")
    visits = {
        customer: [
            "/",
            "/tickets/new/",
            ticket.get_absolute_url(),
            article.get_absolute_url(),
            "/roadmap/",
            feature.get_absolute_url(),
        ],
        manager: ["/dashboards/"],
        agent: [f"/admin/support/ticket/{ticket.pk}/change/", "/api/docs/"],
    }
    for user, paths in visits.items():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        _sign_in(context, live_server, user)
        page = context.new_page()
        violations = _violations(page)
        for path in paths:
            response = page.goto(f"{live_server.url}{path}", wait_until="load")
            assert response.status == 200, (path, response.status)
            assert page.url == f"{live_server.url}{path}", (path, page.url)  # no redirect
            assert "Content-Security-Policy" in {k.title() for k in response.headers}
            page.wait_for_load_state("networkidle")
        if user == agent:  # Swagger UI drew the operations from the schema
            page.wait_for_selector(".opblock", timeout=15_000)
            page.screenshot(path=ARTIFACTS / "csp-api-docs.png")
        assert violations == [], violations
        context.close()


# ---- Markdown images ---------------------------------------------------------------------


@pytest.mark.django_db
def test_an_image_from_another_site_becomes_a_link_ours_stay_images(client, customer, settings):
    settings.SITE_URL = "https://help.example.com"
    feature = feedback.request_submit(
        author=customer,
        title="Prettier invoices",
        description=(
            "Like this: ![mockup](https://tracker.example.net/pixel.gif)\n\n"
            "Ours: ![logo](/static/favicon.svg) and "
            "![shot](https://help.example.com/media/shot.png)\n\n"
            '<img src="//tracker.example.net/p.gif" alt="raw">'
        ),
    )
    html = client.get(feature.get_absolute_url()).content.decode()

    link = '<a href="https://tracker.example.net/pixel.gif" rel="noopener noreferrer nofollow">'
    assert link + "mockup</a>" in html
    assert 'src="https://tracker.example.net' not in html and "//tracker" not in re.sub(
        r'href="[^"]*"', "", html
    )
    assert '<img alt="logo" src="/static/favicon.svg">' in html
    assert '<img alt="shot" src="https://help.example.com/media/shot.png">' in html


# ---- Revenue: managers only --------------------------------------------------------------


@pytest.fixture
def rich_org(db):
    organization = OrganizationFactory(name="Rich Corp", mrr=Decimal("98765.43"))
    customer = CustomerFactory(username="rich-customer", profile__organization=organization)
    feature = feedback.request_submit(author=customer, title="Audit log export")
    return organization, customer, feature


@pytest.mark.django_db
def test_agents_do_not_see_revenue_in_admin_managers_do(rich_org, agent, manager):
    organization, _, feature = rich_org
    as_agent, as_manager = signed_in(agent), signed_in(manager)
    pages = [
        "/admin/support/organization/",
        f"/admin/support/organization/{organization.pk}/change/",
        "/admin/feedback/vote/",
        f"/admin/feedback/featurerequest/{feature.pk}/change/",
    ]
    for path in pages:
        seen_by_agent = as_agent.get(path)
        assert seen_by_agent.status_code == 200, path
        assert "98765" not in seen_by_agent.content.decode(), path
        assert "MRR" not in seen_by_agent.content.decode(), path
        seen_by_manager = as_manager.get(path)
        assert seen_by_manager.status_code == 200, path
        assert "98765" in seen_by_manager.content.decode(), path

    # Nor can an agent bisect it through the changelist's URL lookups.
    probe = as_agent.get("/admin/support/organization/?mrr__gte=90000")
    assert probe.status_code == 400
    assert as_manager.get("/admin/support/organization/?mrr__gte=90000").status_code == 200

    # The manager edits it; the form has the field.
    form = as_manager.get(f"/admin/support/organization/{organization.pk}/change/")
    assert 'name="mrr"' in form.content.decode()


@pytest.mark.django_db
def test_the_api_never_shows_revenue(rich_org, agent):
    from rest_framework.test import APIClient

    organization, customer, _ = rich_org
    ticket = services.ticket_open(requester=customer, subject="Export", description="Please")
    client = APIClient()
    client.force_authenticate(agent)
    body = client.get(f"/api/tickets/{ticket.reference}/").content.decode()
    assert organization.name in body and "98765" not in body and "mrr" not in body


@pytest.mark.django_db
@pytest.mark.parametrize("template", ["500.html", "503.html"])
def test_the_bare_error_pages_style_is_what_the_policy_allows(client, template):
    """The error pages carry their own <style> (no static files); the policy allows exactly
    that text by hash, so a browser applies it."""
    import base64
    import hashlib

    from django.template.loader import render_to_string

    (style,) = re.findall(r"<style>(.*?)</style>", render_to_string(template), flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = directives(client.get("/").headers["Content-Security-Policy"])
    assert f"'sha256-{digest}'" in policy["style-src"].split()
