"""What a person may send (core.limits): NUL bytes and invalid Unicode refused with 400
in paths, query strings, JSON and forms, and with an ``invalid`` frame on sockets; JSON
nested too deep refused; over-long texts refused the same way at every door; bodies too
large answered 413."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from rest_framework.test import APIClient

from core import limits
from knowledge.models import SearchLog
from support.models import Ticket
from tests.realtime.conftest import connected, headers

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


# ---- the reported 500s -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/tickets/HD-%00/",
        "/api/tickets/HD-%00/messages/",
        "/api/tickets/?search=%00",
        "/api/tickets/?search=caf%C3%A9%00x",
        "/api/articles/?ordering=%00",
        "/api/tickets/HD-%FF/",  # not UTF-8
        "/api/tickets/?search=%E9t%E9",  # latin-1, not UTF-8
    ],
)
def test_nul_or_invalid_unicode_in_an_api_address_is_a_json_400(path, customer):
    for client in (api(), api(customer)):
        response = client.get(path)

        assert response.status_code == 400, path
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["code"] == "invalid_characters"
        assert body["detail"]


def test_nul_in_the_help_center_search_is_a_plain_400_page(client):
    response = client.get("/help/search/?q=%00")

    assert response.status_code == 400
    assert "We could not understand that request" in response.content.decode()
    assert not SearchLog.objects.exists()


def test_an_over_long_query_value_is_refused(customer):
    response = api(customer).get("/api/tickets/", {"search": "x" * (limits.QUERY_VALUE + 1)})

    assert response.status_code == 400
    assert response.json()["code"] == "too_long"


def test_nul_in_an_article_category_is_refused_in_json_and_in_a_form(kb, agent):
    article = next(iter(kb.values()))
    category_id = article.category_id
    url = f"/api/articles/{article.slug}/"

    as_json = api(agent).patch(url, {"category": "\u0000"}, format="json")
    as_form = api(agent).patch(url, {"category": "da\x00ta"}, format="multipart")

    for response in (as_json, as_form):
        assert response.status_code == 400
        assert response.json() == {
            "detail": "Null characters are not allowed.",
            "code": "invalid_characters",
        }
    article.refresh_from_db()
    assert article.category_id == category_id


@pytest.mark.parametrize(
    "body",
    [
        '{"subject": "Hi\\u0000", "description": "x"}',  # NUL in a value
        '{"subj\\u0000ect": "Hi", "description": "x"}',  # NUL in a key
        '{"subject": "Hi \\ud800", "description": "x"}',  # a lone surrogate
    ],
)
def test_json_with_nul_or_a_lone_surrogate_is_refused(body, customer):
    response = api(customer).post("/api/tickets/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_characters"
    assert not Ticket.objects.exists()


def test_json_nested_five_thousand_deep_is_a_400_not_a_recursion_error():
    response = api().post("/api/auth/token/", deep_json(5000), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "too_deep"


def test_json_just_past_the_depth_limit_is_refused_and_at_it_parsed():
    # The body is depth 1; its "username" adds one level per bracket pair.
    at_limit = {"username": json.loads(deep_json(limits.MAX_JSON_DEPTH - 1)), "password": "x"}
    past_limit = {"username": json.loads(deep_json(limits.MAX_JSON_DEPTH)), "password": "x"}

    parsed = api().post("/api/auth/token/", at_limit, format="json")
    refused = api().post("/api/auth/token/", past_limit, format="json")

    assert parsed.status_code == 400
    assert "username" in parsed.json()  # parsed, then refused by the serializer
    assert refused.status_code == 400
    assert refused.json()["code"] == "too_deep"


# ---- bodies too large ------------------------------------------------------------------


def test_a_ten_megabyte_json_body_is_a_json_413(customer):
    body = json.dumps({"subject": "Big", "description": "x" * (10 * 1024 * 1024)})

    response = api(customer).post("/api/tickets/", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert not Ticket.objects.exists()


def test_a_body_announced_at_a_hundred_megabytes_is_refused_before_it_is_read(customer):
    response = api(customer).post(
        "/api/tickets/",
        '{"subject": "x"}',
        content_type="application/json",
        CONTENT_LENGTH=str(100 * 1024 * 1024),
    )

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_a_ten_megabyte_portal_form_is_a_413_page(customer):
    client = Client()
    client.force_login(customer)

    response = client.post(
        "/tickets/new/", {"subject": "Big", "description": "x" * (10 * 1024 * 1024)}
    )

    assert response.status_code == 413
    assert not Ticket.objects.exists()


# ---- lengths: the same limits in the API, the forms and the sockets ----------------------


def test_too_long_texts_are_field_errors_in_the_api(customer, ticket):
    client = api(customer)

    subject = client.post(
        "/api/tickets/",
        {"subject": "s" * (limits.SUBJECT + 1), "description": "x"},
        format="json",
    )
    description = client.post(
        "/api/tickets/",
        {"subject": "ok", "description": "d" * (limits.TICKET_DESCRIPTION + 1)},
        format="json",
    )
    reason = client.post(
        f"/api/tickets/{ticket.reference}/escalate/",
        {"reason": "r" * (limits.REASON + 1)},
        format="json",
    )

    assert subject.status_code == description.status_code == reason.status_code == 400
    assert subject.json() == {"subject": ["Ensure this field has no more than 200 characters."]}
    assert description.json() == {
        "description": ["Ensure this field has no more than 20000 characters."]
    }
    assert reason.json() == {"reason": ["Ensure this field has no more than 2000 characters."]}
    assert Ticket.objects.count() == 1
    assert not ticket.escalations.exists()


def test_a_too_long_description_is_a_form_error_on_the_portal(customer):
    client = Client()
    client.force_login(customer)

    response = client.post(
        "/tickets/new/",
        {"subject": "Hi", "type": "general", "description": "d" * (limits.TICKET_DESCRIPTION + 1)},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["description"] == [
        "Ensure this value has at most 20000 characters (it has 20001)."
    ]
    assert not Ticket.objects.exists()


def test_nul_in_a_portal_form_is_a_form_error_not_a_500(customer):
    client = Client()
    client.force_login(customer)

    response = client.post(
        "/tickets/new/", {"subject": "Hi\x00", "type": "general", "description": "text"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["subject"] == ["Null characters are not allowed."]
    assert not Ticket.objects.exists()


def test_a_too_long_help_center_search_is_refused_with_a_message(client, kb):
    response = client.get("/help/search/", {"q": "export " * 60})

    assert response.status_code == 200
    assert "Ensure this value has at most 300 characters" in response.content.decode()
    assert not SearchLog.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_sockets_refuse_nul_deep_json_and_too_long_texts(customer, settings):
    settings.HELPDESK_WS_MAX_MESSAGE_BYTES = 64 * 1024
    signed_in = headers(customer)

    async def scenario():
        async with connected("/ws/chat/", signed_in) as socket:
            frames = []
            for frame in (
                '{"action": "start", "message": "Hello\\u0000"}',
                '{"action": "start", "message": "Hi \\udc00"}',
                '{"action": "ping", "x": ' + deep_json(40) + "}",
                '{"action": "ping", "x": ' + deep_json(5000) + "}",
                json.dumps({"action": "start", "message": "m" * (limits.TICKET_DESCRIPTION + 1)}),
            ):
                await socket.send_to(text_data=frame)
                frames.append(await socket.receive_json_from(timeout=5))
            await socket.send_json_to({"action": "ping"})
            frames.append(await socket.receive_json_from(timeout=5))
            return frames

    frames = async_to_sync(scenario)()

    nul, surrogate, deep, deeper, too_long, pong = frames
    assert nul == {
        "type": "error",
        "code": "invalid",
        "message": "Null characters are not allowed.",
        "reason": "invalid_characters",
    }
    assert surrogate["code"] == "invalid" and surrogate["reason"] == "invalid_characters"
    assert deep["code"] == deeper["code"] == "invalid"
    assert deep["reason"] == deeper["reason"] == "too_deep"
    assert too_long == {
        "type": "error",
        "code": "too_long",
        "message": "Ensure this field has no more than 20000 characters.",
        "field": "message",
        "limit": 20000,
        "action": "start",
    }
    assert pong == {"type": "pong"}  # the connection is still usable
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/api/tickets/", "application/json"), ("/tickets/new/", "text/html; charset=utf-8")],
)
def test_a_body_announced_too_large_is_refused_before_it_is_read(path, content_type):
    import asyncio

    from config.asgi import application
    from core.limits import max_request_bytes

    sent: list[dict] = []

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"content-length", str(max_request_bytes() + 1).encode())],
    }
    asyncio.run(application(scope, receive, send))

    start, body = sent
    assert start["status"] == 413
    assert dict(start["headers"])[b"content-type"] == content_type.encode()
    if path.startswith("/api/"):
        assert json.loads(body["body"])["code"] == "request_too_large"
