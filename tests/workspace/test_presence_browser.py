"""The acceptance test of presence and collision: two agents in headless Chromium on one
ticket page, served by uvicorn (HTTP and WebSocket) on the test database and Redis."""

import pytest
from playwright.sync_api import expect

from support import services
from tests.conftest import ARTIFACTS, browser_login
from tests.factories import AgentFactory
from tests.realtime.conftest import asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAIT = 10_000  # ms


@pytest.fixture(scope="module")
def live_asgi(django_db_setup):
    with asgi_server() as server:
        yield server


def open_ticket(browser, server, user, ticket):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    browser_login(page, server, user.username)
    page.goto(f"{server.url}/admin/support/ticket/{ticket.pk}/change/")
    page.wait_for_selector("[data-live-indicator][data-state='live']", timeout=15_000)
    return page


def test_two_agents_see_each_other_and_the_new_message_warning(
    browser, live_asgi, ticket, customer
):
    ana = AgentFactory(username="ana", first_name="Ana", last_name="Lopez")
    ben = AgentFactory(username="ben", first_name="Ben", last_name="Okafor")
    a = open_ticket(browser, live_asgi, ana, ticket)
    b = open_ticket(browser, live_asgi, ben, ticket)

    # Each sees the other in "Also here" (Ana as a late joiner's snapshot, Ben live).
    expect(a.locator("[data-presence]")).to_have_text(
        "Also here: Ben Okafor (viewing)", timeout=WAIT
    )
    expect(b.locator("[data-presence]")).to_have_text(
        "Also here: Ana Lopez (viewing)", timeout=WAIT
    )

    # Ben writes in the reply box: Ana sees him typing.
    b.locator("#hd-reply-body").press_sequentially("Hi, I am on it")
    expect(a.locator("[data-presence]")).to_contain_text("Ben Okafor (typing…)", timeout=WAIT)

    # Ana starts a reply; meanwhile the customer writes again.
    a.fill("#hd-reply-body", "Please try the export again now.")
    a.evaluate("window.__stillHere = true")
    services.message_add(ticket=ticket, author=customer, body="Oh wait, it worked this time!")
    a.get_by_text("Oh wait, it worked this time!").wait_for(timeout=WAIT)
    warning = a.locator("[data-collision-warning]")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("New message from Casey")
    expect(warning).to_contain_text("since you opened this ticket")
    a.screenshot(path=ARTIFACTS / "presence-collision.png", full_page=True)

    # Send asks first; "Cancel" keeps the draft and sends nothing.
    asked = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    a.once("dialog", dismiss)
    a.click("form[data-reply-form] input[type=submit]")
    assert asked and "Send your reply anyway?" in asked[0]
    assert a.evaluate("window.__stillHere") is True  # not submitted
    expect(a.locator("#hd-reply-body")).to_have_value("Please try the export again now.")
    assert not ticket.messages.filter(body="Please try the export again now.").exists()

    # "OK" sends it.
    a.once("dialog", lambda dialog: dialog.accept())
    a.click("form[data-reply-form] input[type=submit]")
    a.get_by_text("Reply sent.").wait_for(timeout=WAIT)
    assert ticket.messages.latest("pk").body == "Please try the export again now."
    expect(a.locator("[data-collision-warning]")).to_be_hidden()  # a fresh page
