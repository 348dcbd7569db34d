"""Two-factor sign-in (allauth.mfa TOTP): optional for staff, required before admin when
``HELPDESK_STAFF_REQUIRE_MFA`` is on; staff with TOTP give a code after the password."""

import pytest
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)

from tests.conftest import FACTORY_PASSWORD

pytestmark = pytest.mark.django_db


def current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


@pytest.fixture
def require_mfa(settings):
    settings.HELPDESK_STAFF_REQUIRE_MFA = True


def test_staff_without_totp_reach_admin_when_it_is_optional(client, agent):
    client.force_login(agent)
    assert client.get("/admin/").status_code == 200


def test_staff_set_up_totp_before_admin_when_required(client, agent, require_mfa):
    client.post("/accounts/login/", {"login": agent.username, "password": FACTORY_PASSWORD})
    sent = client.get("/admin/support/ticket/")
    assert sent.status_code == 302
    assert sent.url == "/accounts/2fa/totp/activate/?next=/admin/support/ticket/"

    # allauth asks for the password again before a security change.
    confirm = client.get(sent.url)
    assert confirm.url.startswith("/accounts/reauthenticate/")
    client.post(confirm.url, {"password": FACTORY_PASSWORD})
    setup = client.get(sent.url)
    secret = setup.context["form"].secret
    assert setup.status_code == 200 and secret in setup.content.decode()  # for the app
    client.post("/accounts/2fa/totp/activate/", {"code": current_code(secret)})
    assert client.get("/admin/support/ticket/").status_code == 200


def test_staff_with_totp_sign_in_with_a_code(client, agent, require_mfa):
    secret = generate_totp_secret()
    TOTP.activate(agent, secret)

    asked = client.post(
        "/accounts/login/?next=/admin/",
        {"login": agent.username, "password": FACTORY_PASSWORD, "next": "/admin/"},
    )
    assert asked.url == "/accounts/2fa/authenticate/"
    assert client.get("/admin/").status_code == 302  # the password alone is not enough

    done = client.post("/accounts/2fa/authenticate/", {"code": current_code(secret)})
    assert done.url == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_an_api_token_needs_the_authenticator_code_of_a_user_who_has_one(client, agent):
    secret = generate_totp_secret()
    TOTP.activate(agent, secret)
    credentials = {"username": agent.username, "password": FACTORY_PASSWORD}

    without = client.post("/api/auth/token/", credentials, content_type="application/json")
    wrong = client.post(
        "/api/auth/token/", {**credentials, "otp": "000000"}, content_type="application/json"
    )
    right = client.post(
        "/api/auth/token/",
        {**credentials, "otp": current_code(secret)},
        content_type="application/json",
    )

    assert without.status_code == 400 and "authenticator" in without.json()["otp"][0]
    assert wrong.status_code == 400 and "not valid" in wrong.json()["otp"][0]
    assert right.status_code == 200 and len(right.json()["token"]) == 40


def test_staff_without_totp_get_no_api_token_when_it_is_required(
    client, agent, customer, require_mfa
):
    refused = client.post(
        "/api/auth/token/",
        {"username": agent.username, "password": FACTORY_PASSWORD},
        content_type="application/json",
    )
    customer_token = client.post(
        "/api/auth/token/",
        {"username": customer.username, "password": FACTORY_PASSWORD},
        content_type="application/json",
    )

    assert refused.status_code == 400 and "Set up two-factor" in refused.json()["otp"][0]
    assert customer_token.status_code == 200
