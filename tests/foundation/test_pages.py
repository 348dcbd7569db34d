import re

import pytest
from django.contrib.messages import constants, get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.template.loader import render_to_string
from django.test import RequestFactory


@pytest.mark.django_db
def test_home_page_uses_the_base_layout_with_local_assets(client):
    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="en"' in html
    assert 'href="#main"' in html  # skip link for keyboard users
    assert 'name="viewport"' in html
    assert "/static/vendor/bootstrap/bootstrap.min.css" in html
    # Nothing loads from another host: every src/href is local or an anchor.
    external = re.findall(r'(?:src|href)="(https?:)?//', html)
    assert external == []


@pytest.mark.django_db
def test_vendored_static_files_are_served(client):
    response = client.get("/static/vendor/bootstrap/bootstrap.min.css")

    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert b"Bootstrap" in body[:200]


@pytest.mark.django_db
def test_unknown_page_gets_the_styled_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "We couldn't find that page" in html
    assert "bootstrap.min.css" in html


def test_500_page_renders_without_a_request_context():
    html = render_to_string("500.html")

    assert "Something went wrong on our side" in html
    # The last resort needs nothing that may be what failed (static manifest, database).
    assert "/static/" not in html


@pytest.mark.django_db
def test_messages_are_shown_in_the_layout(rf: RequestFactory, customer):
    request = rf.get("/")
    request.user = customer
    request.session = {}
    request._messages = FallbackStorage(request)
    request._messages.add(constants.SUCCESS, "Your ticket was opened.")

    html = render_to_string("base.html", request=request)

    assert "Your ticket was opened." in html
    assert "alert-success" in html
    assert get_messages(request).used  # marked as shown, so the next page won't repeat it


@pytest.mark.django_db
def test_sign_in_page_shows_errors_and_signs_in(client, customer):
    bad = client.post("/accounts/login/", {"login": "customer-a", "password": "wrong"})
    assert bad.status_code == 200
    assert "Please enter a correct username (or email) and password" in bad.content.decode()
    assert 'value="wrong"' not in bad.content.decode()

    good = client.post(
        "/accounts/login/", {"login": "customer-a", "password": "correct-horse-battery"}
    )
    assert good.status_code == 302
    assert int(client.session["_auth_user_id"]) == customer.pk


@pytest.mark.django_db
def test_only_staff_reach_admin(client, customer, agent):
    client.force_login(customer)
    assert client.get("/admin/").status_code == 302  # to the admin login

    client.force_login(agent)
    assert client.get("/admin/").status_code == 200
