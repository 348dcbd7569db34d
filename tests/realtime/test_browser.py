"""Live updates in a real headless Chromium against uvicorn (HTTP and WebSocket, as
``make run`` serves them) on the test database: a customer's ticket page and an agent's
ticket page side by side, each seeing what the other sends without reloading; and the
help center's chat with a real Celery worker answering. Screenshots go to artifacts/."""

import pytest

from support.models import Ticket
from tests.conftest import ARTIFACTS, browser_login, celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def live(page):
    page.wait_for_selector("[data-live-indicator][data-state='live']", timeout=15_000)


def test_a_message_sent_on_one_page_appears_on_the_other(
    browser, live_asgi, ticket, customer, agent
):
    customer_page = browser.new_context().new_page()
    agent_page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    browser_login(customer_page, live_asgi, customer.username)
    browser_login(agent_page, live_asgi, agent.username)
    customer_page.goto(f"{live_asgi.url}{ticket.get_absolute_url()}")
    agent_page.goto(f"{live_asgi.url}/admin/support/ticket/{ticket.pk}/change/")
    live(customer_page)
    live(agent_page)
    customer_page.evaluate("window.__stillHere = true")  # gone if the page reloads

    # The agent answers in the workspace; the customer's page shows it as it happens.
    agent_page.fill("#hd-reply-body", "We are looking at your export now.")
    agent_page.click("form[action$='/act/reply/'] input[type=submit]")
    customer_page.get_by_text("We are looking at your export now.").wait_for(timeout=10_000)
    assert customer_page.evaluate("window.__stillHere") is True
    assert customer_page.locator("[data-live-status]").inner_text() == "Waiting for your reply"

    # An internal note reaches the other agent pages, never the customer's.
    live(agent_page)
    agent_page.evaluate("window.__stillHere = true")
    agent_page.fill("#hd-reply-body", "Their account is on the legacy export.")
    agent_page.check("input[name=is_internal]")
    agent_page.click("form[action$='/act/reply/'] input[type=submit]")
    agent_page.locator("#conversation").get_by_text(
        "Their account is on the legacy export."
    ).wait_for()

    # The customer answers from the portal; the agent's page shows it without a reload.
    live(agent_page)
    agent_page.evaluate("window.__stillHere = true")
    customer_page.fill("textarea[name=body]", "Thanks, it still spins on the 2024 invoices.")
    customer_page.get_by_role("button", name="Send reply").click()
    agent_page.locator("#conversation").get_by_text(
        "Thanks, it still spins on the 2024 invoices."
    ).wait_for(timeout=10_000)
    assert agent_page.evaluate("window.__stillHere") is True
    live(customer_page)
    assert customer_page.get_by_text("Their account is on the legacy export.").count() == 0
    event_log = agent_page.locator("[data-live-events]").inner_text()
    assert "status changed from awaiting_customer to new" in event_log  # added live too

    customer_page.screenshot(path=ARTIFACTS / "live-customer-page.png", full_page=True)
    agent_page.screenshot(path=ARTIFACTS / "live-agent-page.png", full_page=True)
    assert (ARTIFACTS / "live-agent-page.png").stat().st_size > 10_000


def test_the_feed_shows_a_new_ticket_without_a_reload(browser, live_asgi, customer, agent):
    from support import services

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    browser_login(page, live_asgi, agent.username)
    page.goto(f"{live_asgi.url}/admin/support/ticket/feed/")
    live(page)

    ticket = services.ticket_open(
        requester=customer, subject="Checkout is down", description="500s", priority="urgent"
    )

    column = page.locator("[data-feed-column='at_risk']")
    column.get_by_text("Checkout is down").wait_for(timeout=10_000)
    page.wait_for_function(  # the counts come in their own frame, right after the card
        "() => document.querySelector(\"[data-feed-count='at_risk']\").textContent === '1'"
    )
    assert page.locator(f"[data-feed-column='new'] [data-feed-ticket='{ticket.reference}']")
    page.screenshot(path=ARTIFACTS / "live-feed.png", full_page=True)

    # Filters switch over the socket, without a reload; the URL follows.
    page.evaluate("window.__stillHere = true")
    page.get_by_role("link", name="Mine").click()
    page.wait_for_function(  # a function, not an expression: our CSP forbids eval
        "() => document.querySelector(\"[data-feed-count='at_risk']\").textContent === '0'"
    )
    assert column.get_by_text("Checkout is down").count() == 0
    assert page.url.endswith("?filter=mine") and page.evaluate("window.__stillHere") is True
    page.get_by_role("link", name="Unassigned").click()
    column.get_by_text("Checkout is down").wait_for()


@pytest.mark.long(30)
def test_chatting_with_the_ai_then_a_person_from_the_help_center(browser, live_asgi, kb, customer):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    browser_login(page, live_asgi, customer.username)
    with celery_worker():
        page.goto(f"{live_asgi.url}/help/")
        page.get_by_role("button", name="Chat with us").click()
        live(page)
        page.fill("#hd-chat-input", "How do I reset my password? I forgot it.")
        page.keyboard.press("Enter")
        answer = page.locator("[data-chat-message].hd-chat-ai")
        answer.wait_for(timeout=60_000)  # the worker loads the model first
        assert "Forgot password" in answer.inner_text()
        assert page.locator("[data-chat-draft]").count() == 0

        # The AI's answer may have resolved the chat: a person is still one click away.
        page.get_by_role("button", name="Talk to a human").click()
        page.get_by_text("A person from our team will join this chat").wait_for()
        page.fill("#hd-chat-input", "The link says it has expired.")
        page.keyboard.press("Enter")
        page.get_by_text("The link says it has expired.").wait_for()

    # Another help page: the chat is still open, with the same conversation.
    page.goto(f"{live_asgi.url}/help/search/?q=password")
    live(page)
    page.get_by_text("The link says it has expired.").wait_for(timeout=10_000)
    assert page.get_by_role("button", name="Talk to a human").is_hidden()
    page.screenshot(path=ARTIFACTS / "live-chat.png", full_page=True)

    chat = Ticket.objects.get(requester=customer, channel="chat")
    assert chat.status == "escalated"
    assert chat.escalations.get().kind == "customer_requested"
