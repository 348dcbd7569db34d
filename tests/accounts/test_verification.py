"""Sign-up on allauth: a link is mailed, and only a customer who followed it opens
tickets (portal, API, chat) or votes and submits on the roadmap; staff are exempt. The
same answers for known and unknown emails (sign-up, password reset)."""

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from support.models import Ticket
from tests.accounts.conftest import confirmation_path

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-pass-phrase-42"


def sign_up(client, email, first_name="Nia"):
    return client.post(
        "/accounts/signup/",
        {"first_name": first_name, "email": email, "password1": PASSWORD, "password2": PASSWORD},
    )


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_sign_up_mails_a_link_and_tickets_wait_for_it(client, mailoutbox, feature):
    assert sign_up(client, "nia@example.com").url == "/accounts/confirm-email/"
    user = get_user_model().objects.get(email="nia@example.com")
    assert user.customer_profile is not None  # support's customer_register ran
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["nia@example.com"]
    link = confirmation_path(mailoutbox[0])

    # Mandatory verification: no sign-in yet; a session (e.g. an old one) still can't act.
    login = client.post("/accounts/login/", {"login": "nia@example.com", "password": PASSWORD})
    assert login.url == "/accounts/confirm-email/"
    client.force_login(user)
    page = client.get("/tickets/new/")
    assert page.status_code == 403
    assert "Confirm your email address" in page.content.decode()
    assert "Resend verification email" in page.content.decode()
    posted = client.post("/tickets/new/", {"subject": "Hi", "type": "general", "description": "x"})
    assert posted.status_code == 403
    created = api(user).post(
        "/api/tickets/", {"subject": "Hi", "description": "Help"}, format="json"
    )
    assert created.status_code == 403
    assert created.json()["code"] == "email_unverified" and created.json()["detail"]
    assert client.post(f"/roadmap/{feature.pk}/vote/", {"value": "up"}).status_code == 403
    voted = client.post(
        f"/roadmap/{feature.pk}/vote/", {"value": "up"}, HTTP_ACCEPT="application/json"
    )
    assert (voted.status_code, voted.json()["code"]) == (403, "email_unverified")
    assert client.get("/roadmap/new/").status_code == 403
    assert (
        api(user)
        .post(f"/api/feature-requests/{feature.pk}/vote/", {"value": 1}, format="json")
        .json()["code"]
        == "email_unverified"
    )
    assert not Ticket.objects.filter(requester=user).exists()
    feature.refresh_from_db()
    assert feature.upvotes == 1  # the author's own vote only

    client.logout()
    assert client.get(link).status_code == 200  # a page with a Confirm button
    assert client.post(link).status_code == 302  # signed in (same browser as sign-up: no)
    assert EmailAddress.objects.get(user=user).verified
    client.force_login(user)
    assert client.get("/tickets/new/").status_code == 200
    created = api(user).post(
        "/api/tickets/", {"subject": "Hi", "description": "Help me"}, format="json"
    )
    assert created.status_code == 201
    voted = client.post(
        f"/roadmap/{feature.pk}/vote/", {"value": "up"}, HTTP_ACCEPT="application/json"
    )
    assert voted.status_code == 200 and voted.json()["upvotes"] == 2


def test_the_notice_resends_the_link(client, unverified, mailoutbox):
    client.force_login(unverified)
    response = client.post("/accounts/verify/resend/", {"next": "/tickets/new/"})
    assert response.url == "/tickets/new/"
    assert [mail.to for mail in mailoutbox] == [[unverified.email]]
    client.get(confirmation_path(mailoutbox[0]))
    client.post(confirmation_path(mailoutbox[0]))
    assert client.get("/tickets/new/").status_code == 200


def test_staff_open_tickets_without_a_verified_email(agent, customer):
    EmailAddress.objects.filter(user=agent).update(verified=False)
    created = api(agent).post(
        "/api/tickets/",
        {"subject": "On behalf", "description": "Phoned in", "requester": customer.pk},
        format="json",
    )
    assert created.status_code == 201


def test_sign_up_answers_the_same_for_a_known_email(client, customer, mailoutbox):
    known = sign_up(client, customer.email.upper(), first_name="Mallory")
    unknown = sign_up(client, "someone-new@example.com")

    assert (known.status_code, known.url) == (unknown.status_code, unknown.url)
    assert get_user_model().objects.filter(email__iexact=customer.email).count() == 1
    # The owner learns that someone tried; the new address gets its link.
    assert sorted(mail.to[0] for mail in mailoutbox) == sorted(
        [customer.email, "someone-new@example.com"]
    )


def test_password_reset_answers_the_same_for_a_known_email(client, customer, mailoutbox):
    known = client.post("/accounts/password/reset/", {"email": customer.email})
    unknown = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})

    assert (
        (known.status_code, known.url)
        == (unknown.status_code, unknown.url)
        == (
            302,
            "/accounts/password/reset/done/",
        )
    )
    reset = [mail for mail in mailoutbox if mail.to == [customer.email]]
    assert len(reset) == 1 and "/accounts/password/reset/key/" in reset[0].body


def test_a_changed_email_is_used_once_verified(client, customer, mailoutbox):
    client.force_login(customer)
    client.post("/accounts/email/", {"action_add": "", "email": "casey.new@example.com"})

    added = EmailAddress.objects.get(user=customer, email="casey.new@example.com")
    assert not added.verified
    customer.refresh_from_db()
    assert customer.email == "customer-a@example.com"  # the old one until verified
    assert client.get("/tickets/new/").status_code == 200  # still verified through it
    client.post(confirmation_path(mailoutbox[-1]))
    customer.refresh_from_db()
    assert customer.email == "casey.new@example.com"


def test_account_pages_render_in_the_site_layout(client, customer):
    for path in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        page = client.get(path)
        assert page.status_code == 200 and "Help center" in page.content.decode(), path
    client.force_login(customer)
    for path in ("/accounts/email/", "/accounts/password/change/", "/accounts/2fa/"):
        page = client.get(path)
        assert page.status_code == 200 and "Help center" in page.content.decode(), path
