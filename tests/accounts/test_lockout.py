"""Lockout (django-axes) on the three doors: the sign-in page, admin (whose login sends
staff to that page) and the API token endpoint. After N wrong passwords for one
username from one address even the right one is refused until the cool-off ends or
staff reset it (``manage.py axes_reset_username``)."""

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import FACTORY_PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = settings.AXES_FAILURE_LIMIT
COOLOFF = str(settings.HELPDESK_LOGIN_COOLOFF_MINUTES * 60)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_sign_in_page_locks_after_n_failures(client, customer):
    for attempt in range(LIMIT - 1):
        # Username or email: one counter for the account.
        login = customer.email if attempt % 2 else customer.username
        wrong = client.post("/accounts/login/", {"login": login, "password": "wrong"})
        assert wrong.status_code == 200 and "correct username" in wrong.content.decode()

    locked = client.post("/accounts/login/", {"login": customer.username, "password": "wrong"})
    assert locked.status_code == 429 and locked["Retry-After"] == COOLOFF
    assert "Too many failed sign-in attempts" in locked.content.decode()
    right = client.post(
        "/accounts/login/", {"login": customer.username, "password": FACTORY_PASSWORD}
    )
    assert right.status_code == 429 and not signed_in(client)

    # The lock is per username and address: the customer elsewhere is not locked out.
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    elsewhere.post("/accounts/login/", {"login": customer.username, "password": FACTORY_PASSWORD})
    assert signed_in(elsewhere)

    call_command("axes_reset_username", customer.username)
    again = client.post(
        "/accounts/login/", {"login": customer.username, "password": FACTORY_PASSWORD}
    )
    assert again.status_code == 302 and signed_in(client)


def test_unknown_usernames_lock_the_same_way(client):
    answers = [
        client.post("/accounts/login/", {"login": "nobody", "password": "wrong"}).status_code
        for _ in range(LIMIT)
    ]
    assert answers == [200] * (LIMIT - 1) + [429]


def test_admin_sign_in_goes_through_the_same_lock(client, agent):
    sent = client.get("/admin/login/?next=/admin/support/ticket/")
    assert sent.status_code == 302
    assert sent.url == "/accounts/login/?next=%2Fadmin%2Fsupport%2Fticket%2F"
    # Admin's own form is gone: posting a password there signs nobody in.
    client.post("/admin/login/", {"username": agent.username, "password": FACTORY_PASSWORD})
    assert not signed_in(client)

    for _ in range(LIMIT):
        last = client.post(sent.url, {"login": agent.username, "password": "wrong"})
    assert last.status_code == 429
    right = client.post(sent.url, {"login": agent.username, "password": FACTORY_PASSWORD})
    assert right.status_code == 429 and client.get("/admin/").status_code == 302

    call_command("axes_reset_username", agent.username)
    right = client.post(sent.url, {"login": agent.username, "password": FACTORY_PASSWORD})
    assert right.url == "/admin/support/ticket/"
    assert client.get("/admin/").status_code == 200


def test_the_token_endpoint_answers_429_json_with_retry_after(customer):
    api = APIClient()

    def token(password):
        return api.post(
            "/api/auth/token/",
            {"username": customer.username, "password": password},
            format="json",
        )

    assert [token("wrong").status_code for _ in range(LIMIT - 1)] == [400] * (LIMIT - 1)
    locked = token("wrong")
    assert locked.status_code == 429 and locked["Retry-After"] == COOLOFF
    assert locked.json()["code"] == "locked_out" and locked.json()["detail"]
    assert token(FACTORY_PASSWORD).status_code == 429
    # One counter with the sign-in page: the page is locked for this pair as well.
    page = Client().post(
        "/accounts/login/", {"login": customer.username, "password": FACTORY_PASSWORD}
    )
    assert page.status_code == 429

    call_command("axes_reset_username", customer.username)
    unlocked = token(FACTORY_PASSWORD)
    assert unlocked.status_code == 200 and unlocked.json()["token"]


def test_managers_see_and_lift_locks_in_admin(client, customer, manager, agent):
    from axes.models import AccessAttempt

    for _ in range(LIMIT):
        Client().post("/accounts/login/", {"login": customer.username, "password": "wrong"})
    attempt = AccessAttempt.objects.get(username=customer.username)
    client.force_login(agent)
    assert client.get("/admin/axes/accessattempt/").status_code == 403
    client.force_login(manager)

    listing = client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and customer.username in listing.content.decode()
    client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert not AccessAttempt.objects.exists()
    relieved = Client().post(
        "/accounts/login/", {"login": customer.username, "password": FACTORY_PASSWORD}
    )
    assert relieved.status_code == 302


def test_customers_at_the_admin_door_are_told_it_is_for_staff(client, customer):
    client.force_login(customer)
    page = client.get("/admin/login/?next=/admin/")
    assert page.status_code == 200
    assert "the agent workspace is for the support team" in page.content.decode()
