"""The roadmap in a real headless Chromium: load, vote without a reload, see the count
change; and the same vote with JavaScript turned off. Screenshots go to artifacts/."""

import pytest

from feedback import services
from feedback.models import Vote
from tests.conftest import ARTIFACTS, browser_login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def roadmap(customer, other_customer, agent):
    mine = services.request_submit(author=customer, title="Dark mode for the dashboard")
    theirs = services.request_submit(author=other_customer, title="Slack notifications")
    planned = services.request_submit(author=other_customer, title="SAML single sign-on")
    services.request_change_status(request=planned, status="planned", actor=agent)
    return {"mine": mine, "theirs": theirs, "planned": planned}


def test_vote_on_the_roadmap_without_a_page_reload(browser, live_server, roadmap, customer):
    theirs = roadmap["theirs"]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{live_server.url}/roadmap/")
    assert page.get_by_role("heading", name="Roadmap").is_visible()
    assert page.locator("#col-planned").is_visible()

    browser_login(page, live_server, customer.username)
    page.goto(f"{live_server.url}/roadmap/")
    row = page.locator(f"[data-open-list] #request-{theirs.pk}")
    assert row.locator("[data-upvotes]").inner_text() == "1"
    page.evaluate("window.__stillHere = true")  # gone if the page reloads

    row.get_by_role("button", name="Upvote “Slack notifications”").click()
    page.wait_for_function(
        "el => el.textContent.trim() === '2'", arg=row.locator("[data-upvotes]").element_handle()
    )
    assert page.evaluate("window.__stillHere") is True
    assert (
        row.get_by_role("button", name="Upvote “Slack notifications”").get_attribute("aria-pressed")
        == "true"
    )
    page.screenshot(path=ARTIFACTS / "roadmap-voted.png", full_page=True)
    assert (ARTIFACTS / "roadmap-voted.png").stat().st_size > 10_000

    # Clicking again withdraws the vote.
    row.get_by_role("button", name="Upvote “Slack notifications”").click()
    page.wait_for_function(
        "el => el.textContent.trim() === '1'", arg=row.locator("[data-upvotes]").element_handle()
    )
    row.get_by_role("button", name="Upvote “Slack notifications”").click()
    page.wait_for_function(
        "el => el.textContent.trim() === '2'", arg=row.locator("[data-upvotes]").element_handle()
    )
    page.close()
    theirs.refresh_from_db()
    assert (theirs.upvotes, theirs.votes.get(user=customer).value) == (2, Vote.Value.UP)


def test_voting_still_works_without_javascript(browser, live_server, roadmap, customer):
    theirs = roadmap["theirs"]
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    browser_login(page, live_server, customer.username)
    page.goto(f"{live_server.url}{theirs.get_absolute_url()}")
    with page.expect_navigation():
        page.get_by_role("button", name="Downvote “Slack notifications”").click()
    assert "Thanks for voting!" in page.content()
    assert page.locator("[data-downvotes]").inner_text() == "1 down"
    page.screenshot(path=ARTIFACTS / "roadmap-no-js.png", full_page=True)
    context.close()
    theirs.refresh_from_db()
    assert (theirs.upvotes, theirs.downvotes) == (1, 1)


def test_anonymous_visitor_is_sent_to_sign_in_to_vote(browser, live_server, roadmap):
    page = browser.new_page()
    page.goto(f"{live_server.url}/roadmap/")
    page.get_by_role("button", name="Upvote “Slack notifications”").first.click()
    page.wait_for_url("**/accounts/login/**")
    page.close()
    roadmap["theirs"].refresh_from_db()
    assert roadmap["theirs"].upvotes == 1
