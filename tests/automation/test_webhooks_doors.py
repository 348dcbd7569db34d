"""Outbound webhooks' doors: the staff API (CRUD, secret shown on create and rotate only,
deliveries, ping, redeliver, field errors) and admin (staff only, actions, bounded queries)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from automation.models import WebhookDelivery, WebhookEndpoint
from automation.services import webhooks as services
from automation.tasks import deliver_webhook
from support import services as support
from tests.automation.test_webhooks import Receiver

API = "/api/automation"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


def make_endpoint(agent, url, name="CRM", events=("ticket.created",)):
    return services.endpoint_create(name=name, url=url, events=list(events), actor=agent)


# --------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------


def test_customers_and_anonymous_callers_are_refused(customer, agent, receiver):
    endpoint = make_endpoint(agent, receiver.url)
    client = APIClient()
    assert client.get(f"{API}/webhooks/").status_code == 401
    client.force_authenticate(customer)
    for method, url in [
        ("get", f"{API}/webhooks/"),
        ("post", f"{API}/webhooks/"),
        ("get", f"{API}/webhooks/{endpoint.pk}/deliveries/"),
        ("post", f"{API}/webhooks/{endpoint.pk}/rotate-secret/"),
        ("post", f"{API}/webhooks/{endpoint.pk}/ping/"),
        ("delete", f"{API}/webhooks/{endpoint.pk}/"),
    ]:
        assert getattr(client, method)(url, {}, format="json").status_code == 403, url
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_the_secret_is_returned_on_create_and_rotate_only(api, receiver):
    created = api.post(
        f"{API}/webhooks/",
        {"name": "CRM", "url": receiver.url, "events": ["ticket.created", "message.added"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.secret == secret and endpoint.events == ["ticket.created", "message.added"]

    listed = api.get(f"{API}/webhooks/").json()
    assert "secret" not in listed["results"][0]
    assert "secret" not in api.get(f"{API}/webhooks/{endpoint.pk}/").json()

    rotated = api.post(f"{API}/webhooks/{endpoint.pk}/rotate-secret/").json()
    assert rotated["secret"] != secret
    endpoint.refresh_from_db()
    assert endpoint.secret == rotated["secret"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "X", "url": "ftp://example.com/", "events": []}, "url"),
        ({"name": "X", "url": "not a url", "events": []}, "url"),
        ({"name": "X", "url": "https://example.com/", "events": ["ticket.exploded"]}, "events"),
        ({"name": "", "url": "https://example.com/", "events": []}, "name"),
    ],
)
def test_invalid_input_gets_field_messages(api, payload, field):
    response = api.post(f"{API}/webhooks/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_private_address_is_refused_with_a_field_message(api, settings):
    settings.HELPDESK_WEBHOOKS_ALLOW_PRIVATE = False
    response = api.post(
        f"{API}/webhooks/",
        {"name": "Inside", "url": "http://169.254.169.254/latest/", "events": []},
        format="json",
    )
    assert response.status_code == 400
    assert "private" in response.json()["url"][0]


def test_a_duplicate_name_is_refused(api, agent, receiver):
    make_endpoint(agent, receiver.url, name="CRM")
    response = api.post(
        f"{API}/webhooks/", {"name": "crm", "url": receiver.url, "events": []}, format="json"
    )
    assert response.status_code == 400 and "name" in response.json()


def test_update_enable_and_delete(api, agent, receiver):
    endpoint = make_endpoint(agent, receiver.url)
    services.endpoint_disable(endpoint=endpoint, actor=None, reason="Failed too often.")

    response = api.patch(
        f"{API}/webhooks/{endpoint.pk}/",
        {"events": ["ticket.resolved"], "is_active": True, "include_internal": True},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["events"] == ["ticket.resolved"] and body["is_active"] is True
    assert body["disabled_at"] is None and body["consecutive_failures"] == 0
    assert body["include_internal"] is True and "secret" not in body
    assert api.delete(f"{API}/webhooks/{endpoint.pk}/").status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_ping_deliveries_and_redeliver(api, agent, receiver):
    endpoint = make_endpoint(agent, receiver.url)

    pinged = api.post(f"{API}/webhooks/{endpoint.pk}/ping/")

    assert pinged.status_code == 202
    delivery = WebhookDelivery.objects.get(pk=pinged.json()["id"])
    assert delivery.event == "ping" and delivery.status == "pending"
    # Still being attempted: not redelivered.
    assert api.post(f"{API}/deliveries/{delivery.pk}/redeliver/").status_code == 409
    assert deliver_webhook(delivery.pk) == "succeeded"
    assert receiver.json()["event"] == "ping"
    log = api.get(f"{API}/webhooks/{endpoint.pk}/deliveries/?status=succeeded").json()
    assert [row["id"] for row in log["results"]] == [delivery.pk]
    assert log["results"][0]["response_status"] == 200
    assert (
        api.get(f"{API}/webhooks/{endpoint.pk}/deliveries/?status=failed").json()["results"] == []
    )

    again = api.post(f"{API}/deliveries/{delivery.pk}/redeliver/")

    assert again.status_code == 202 and again.json()["status"] == "pending"
    assert deliver_webhook(delivery.pk) == "succeeded"
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["headers"]["X-Helpdesk-Delivery"] == str(delivery.event_id)
    assert receiver.requests[1]["headers"]["X-Helpdesk-Delivery"] == str(delivery.event_id)


def test_the_endpoint_list_has_bounded_queries(api, agent, receiver, django_assert_max_num_queries):
    for i in range(8):
        endpoint = make_endpoint(agent, receiver.url, name=f"Endpoint {i}")
        services.endpoint_ping(endpoint=endpoint, actor=agent)
    with django_assert_max_num_queries(8):
        response = api.get(f"{API}/webhooks/")
    assert response.json()["count"] == 8


# --------------------------------------------------------------------------------------
# Admin
# --------------------------------------------------------------------------------------


def test_only_staff_get_into_the_admin_pages(client, customer, agent, receiver):
    endpoint = make_endpoint(agent, receiver.url)
    delivery = services.endpoint_ping(endpoint=endpoint, actor=agent)
    pages = [
        "/admin/automation/webhookendpoint/",
        "/admin/automation/webhookendpoint/add/",
        f"/admin/automation/webhookendpoint/{endpoint.pk}/change/",
        "/admin/automation/webhookdelivery/",
        f"/admin/automation/webhookdelivery/{delivery.pk}/change/",
    ]
    client.force_login(customer)
    for page in pages:
        assert client.get(page).status_code == 302, page  # to the login page
    client.force_login(agent)
    for page in pages:
        assert client.get(page).status_code == 200, page


def test_admin_creates_an_endpoint_and_shows_its_secret_behind_a_reveal(client, agent, receiver):
    client.force_login(agent)
    response = client.post(
        "/admin/automation/webhookendpoint/add/",
        {"name": "CRM", "url": receiver.url, "events": ["ticket.created", "ticket.resolved"]},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["ticket.created", "ticket.resolved"]
    assert endpoint.created_by == agent and endpoint.is_active is False  # box left unticked
    page = client.get(f"/admin/automation/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert "<summary>Reveal</summary>" in page and endpoint.secret in page


def test_admin_refuses_a_private_address_on_the_url_field(client, agent, settings):
    settings.HELPDESK_WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(agent)
    response = client.post(
        "/admin/automation/webhookendpoint/add/",
        {"name": "Inside", "url": "http://10.0.0.5/hook", "events": [], "is_active": "on"},
    )
    assert response.status_code == 200
    assert "private or reserved address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_admin_actions_ping_rotate_and_redeliver(client, agent, receiver):
    endpoint = make_endpoint(agent, receiver.url)
    old_secret = endpoint.secret
    client.force_login(agent)

    client.post(
        "/admin/automation/webhookendpoint/",
        {"action": "rotate_secret_action", "_selected_action": [endpoint.pk]},
    )
    client.post(
        "/admin/automation/webhookendpoint/",
        {"action": "ping_action", "_selected_action": [endpoint.pk]},
    )

    endpoint.refresh_from_db()
    assert endpoint.secret != old_secret
    (ping,) = WebhookDelivery.objects.filter(event="ping")
    deliver_webhook(ping.pk)
    client.post(
        "/admin/automation/webhookdelivery/",
        {"action": "redeliver_action", "_selected_action": [ping.pk]},
    )
    ping.refresh_from_db()
    assert ping.status == "pending" and ping.attempts == 0
    detail = client.get(f"/admin/automation/webhookdelivery/{ping.pk}/change/").content.decode()
    assert "A test ping from the helpdesk." in detail


def test_admin_changelists_have_bounded_queries(
    client, agent, customer, receiver, django_assert_max_num_queries
):
    for i in range(6):
        make_endpoint(agent, receiver.url, name=f"Endpoint {i}", events=["ticket.created"])
    for _ in range(3):
        support.ticket_open(requester=customer, subject="Export broken", description="Help.")
    assert WebhookDelivery.objects.count() == 18
    client.force_login(agent)
    with django_assert_max_num_queries(14):
        assert client.get("/admin/automation/webhookendpoint/").status_code == 200
    with django_assert_max_num_queries(14):
        assert client.get("/admin/automation/webhookdelivery/").status_code == 200


def test_admin_buttons_on_the_pages_ping_rotate_and_redeliver(client, agent, receiver):
    endpoint = make_endpoint(agent, receiver.url)
    old_secret = endpoint.secret
    client.force_login(agent)
    base = f"/admin/automation/webhookendpoint/{endpoint.pk}"
    page = client.get(f"{base}/change/").content.decode()
    assert f"{base}/ping/" in page and f"{base}/rotate-secret/" in page

    assert client.get(f"{base}/ping/").status_code == 405  # a link cannot change anything
    assert client.post(f"{base}/ping/").status_code == 302
    assert client.post(f"{base}/rotate-secret/").status_code == 302

    endpoint.refresh_from_db()
    assert endpoint.secret != old_secret
    (ping,) = WebhookDelivery.objects.filter(event="ping")
    detail = f"/admin/automation/webhookdelivery/{ping.pk}"
    assert f"{detail}/redeliver/" not in client.get(f"{detail}/change/").content.decode()
    deliver_webhook(ping.pk)
    assert f"{detail}/redeliver/" in client.get(f"{detail}/change/").content.decode()
    assert client.post(f"{detail}/redeliver/").status_code == 302
    ping.refresh_from_db()
    assert ping.status == "pending"
    assert deliver_webhook(ping.pk) == "succeeded"
    assert len(receiver.requests) == 2
