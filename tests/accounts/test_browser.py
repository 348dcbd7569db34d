"""In a real headless Chromium: sign up, follow the mailed link, open a ticket; and the
lockout page after too many wrong passwords. Screenshots go to artifacts/."""

import pytest
from django.conf import settings

from support.models import Ticket
from tests.accounts.conftest import confirmation_path
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_sign_up_then_the_mailed_link_then_a_ticket(browser, live_server, mailoutbox):
    page = browser.new_page()
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("input[name=first_name]", "Nia")
    page.fill("input[name=email]", "nia@example.com")
    page.fill("input[name=password1]", "a-long-pass-phrase-42")
    page.fill("input[name=password2]", "a-long-pass-phrase-42")
    page.click("form [type=submit]")
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Verify Your Email Address").is_visible()

    page.goto(f"{live_server.url}{confirmation_path(mailoutbox[0])}")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/tickets/new/")
    page.fill("input[name=subject]", "Invoices do not export")
    page.fill("textarea[name=description]", "The export button does nothing.")
    page.get_by_role("button", name="Send").click()
    page.wait_for_load_state()
    ticket = Ticket.objects.get(requester__email="nia@example.com")
    assert ticket.reference in page.content()
    page.screenshot(path=ARTIFACTS / "accounts-verified-ticket.png", full_page=True)
    page.close()


def test_wrong_passwords_end_on_the_lockout_page(browser, live_server, customer):
    page = browser.new_page()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=login]", customer.username)
        page.fill("input[name=password]", "wrong-password")
        page.click("form [type=submit]")
        page.wait_for_load_state()
    notice = page.locator("[data-lockout]")
    assert "Too many failed sign-in attempts" in notice.inner_text()
    page.screenshot(path=ARTIFACTS / "accounts-lockout.png", full_page=True)
    page.close()
