"""Every error of the API is JSON in one shape, ``{"detail": "...", "code": "..."}`` (field
errors keep DRF's ``{"field": ["..."]}``), whatever raised it: DRF, a service, Django's
URL resolver, its CSRF check, a body too large, an unhandled exception, a database outage.
Each status is made to happen for real."""

import pytest
from django import db
from django.test import Client
from rest_framework.test import APIClient

from config import throttling
from support import selectors

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient()
    client.raise_request_exception = False
    if user is not None:
        client.force_authenticate(user)
    return client


def assert_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "code"}, body
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def test_400_malformed_json(customer):
    response = api(customer).post("/api/tickets/", '{"subject": ', content_type="application/json")

    assert_shape(response, 400, "parse_error")


def test_400_validation_keeps_the_field_error_shape(customer):
    response = api(customer).post("/api/tickets/", {"subject": ""}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "subject": ["This field may not be blank."],
        "description": ["This field is required."],
    }


def test_401_without_credentials():
    response = api().get("/api/tickets/")

    assert_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Token")


def test_401_with_a_wrong_token():
    response = api().get("/api/tickets/", HTTP_AUTHORIZATION="Token not-a-token")

    assert_shape(response, 401, "authentication_failed")


def test_403_a_customer_changing_a_ticket(customer, ticket):
    response = api(customer).patch(
        f"/api/tickets/{ticket.reference}/", {"priority": "urgent"}, format="json"
    )

    assert_shape(response, 403, "permission_denied")


def test_403_a_session_without_the_csrf_token(customer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)

    response = client.post(
        "/api/tickets/", {"subject": "Hi", "description": "x"}, content_type="application/json"
    )

    body = assert_shape(response, 403, "csrf_failed")
    assert body["detail"].startswith("CSRF Failed")


def test_a_page_without_the_csrf_token_still_gets_the_html_page(customer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)

    response = client.post("/tickets/new/", {"subject": "Hi", "description": "x"})

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


def test_404_an_unknown_api_address_and_an_unknown_ticket(customer):
    assert_shape(api(customer).get("/api/no-such-thing/"), 404, "not_found")
    assert_shape(api().get("/api/no-such-thing/"), 404, "not_found")
    assert_shape(api(customer).get("/api/tickets/HD-999999/"), 404, "not_found")


def test_404_of_a_page_is_still_the_html_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_405_wrong_method(customer):
    assert_shape(api(customer).delete("/api/tickets/"), 405, "method_not_allowed")


def test_409_a_conflict_with_the_ticket_state(agent, ticket):
    response = api(agent).post(f"/api/tickets/{ticket.reference}/reopen/")

    assert_shape(response, 409, "invalid_transition")


def test_409_deleting_a_category_in_use(kb, agent):
    assert_shape(api(agent).delete("/api/categories/account/"), 409, "protected")


def test_413_a_body_too_large(customer):
    response = api(customer).post(
        "/api/tickets/",
        '{"subject": "x"}',
        content_type="application/json",
        CONTENT_LENGTH=str(100 * 1024 * 1024),
    )

    assert_shape(response, 413, "request_too_large")


def test_415_wrong_content_type(customer):
    response = api(customer).post("/api/tickets/", "subject=Hi", content_type="text/plain")

    assert_shape(response, 415, "unsupported_media_type")


def test_429_throttled(monkeypatch):
    monkeypatch.setattr(throttling.AnonRateThrottle, "THROTTLE_RATES", {"anon": "2/min"})
    client = api()

    statuses = [client.get("/api/articles/").status_code for _ in range(3)]
    response = client.get("/api/articles/")

    assert statuses == [200, 200, 429]
    assert_shape(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_500_an_unhandled_error(customer, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "ticket_list", broken)

    assert_shape(api(customer).get("/api/tickets/"), 500, "server_error")


def test_503_the_database_away(customer, monkeypatch):
    def unreachable(**kwargs):
        raise db.OperationalError("connection refused")

    monkeypatch.setattr(selectors, "ticket_list", unreachable)

    response = api(customer).get("/api/tickets/")

    assert_shape(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5"
