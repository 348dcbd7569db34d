"""The tickets API: permissions per role, validation, conflicts, internal notes, queries."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from support import services
from support.models import Ticket
from tests.factories import CustomerFactory, SavedReplyFactory


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def url(ticket, suffix=""):
    return f"/api/tickets/{ticket.reference}/{suffix}"


@pytest.fixture
def note(ticket, agent):
    return services.message_add(
        ticket=ticket, author=agent, body="Customer is on legacy plan", is_internal=True
    )


# ---- visibility matrix -------------------------------------------------------------------

VIEWERS = ["anonymous", "customer", "colleague", "org_admin", "other_customer", "agent", "manager"]
CAN_SEE = {
    "anonymous": None,
    "customer": True,
    "colleague": False,
    "org_admin": True,
    "other_customer": False,
    "agent": True,
    "manager": True,
}


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", VIEWERS)
def test_who_sees_a_ticket(request, ticket, viewer):
    user = None if viewer == "anonymous" else request.getfixturevalue(viewer)

    detail = api(user).get(url(ticket))
    listing = api(user).get("/api/tickets/")

    if CAN_SEE[viewer] is None:
        assert detail.status_code == 401 and listing.status_code == 401
    elif CAN_SEE[viewer]:
        assert detail.status_code == 200
        assert [t["reference"] for t in listing.json()["results"]] == [ticket.reference]
    else:
        assert detail.status_code == 404  # others' tickets are not even confirmed to exist
        assert listing.json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", ["customer", "org_admin", "agent"])
def test_internal_notes_reach_staff_only(request, ticket, note, viewer):
    user = request.getfixturevalue(viewer)
    Ticket.objects.filter(pk=ticket.pk).update(ai_confidence=0.42, sentiment=-0.5)

    bodies = [m["body"] for m in api(user).get(url(ticket, "messages/")).json()]
    events = api(user).get(url(ticket, "events/")).json()

    staff = viewer == "agent"
    assert ("Customer is on legacy plan" in bodies) is staff
    assert any(e["kind"] == "message_added" for e in events) is staff
    detail = api(user).get(url(ticket)).json()
    assert (detail["ai_confidence"], detail["sentiment"]) == (
        (0.42, -0.5) if staff else (None, None)
    )


# ---- opening ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_customer_opens_a_ticket(customer):
    response = api(customer).post(
        "/api/tickets/",
        {"subject": "No invoice", "description": "No invoice for May 2", "type": "billing"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "new" and body["channel"] == "api"
    assert body["requester"]["username"] == "customer-a"
    ticket = Ticket.objects.get(reference=body["reference"])
    assert ticket.events.get().kind == "created"


@pytest.mark.django_db
def test_opening_with_attachments_over_multipart(customer):
    response = api(customer).post(
        "/api/tickets/",
        {
            "subject": "Error",
            "description": "See screenshot",
            "attachments": [SimpleUploadedFile("shot.png", b"png-bytes")],
        },
        format="multipart",
    )

    assert response.status_code == 201
    messages = api(customer).get(f"/api/tickets/{response.json()['reference']}/messages/").json()
    assert messages[0]["attachments"][0]["filename"] == "shot.png"


@pytest.mark.django_db
def test_bad_input_answers_400_with_field_errors_and_writes_nothing(customer):
    response = api(customer).post("/api/tickets/", {"subject": "", "type": "weird"}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"subject", "description", "type"}
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_domain_validation_answers_400_on_the_field(customer):
    response = api(customer).post(
        "/api/tickets/",
        {"subject": "x", "description": "y", "attachments": [SimpleUploadedFile("run.exe", b"MZ")]},
        format="multipart",
    )

    assert response.status_code == 400
    assert "not accepted" in response.json()["attachments"][0]
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_customers_cannot_open_for_someone_else(customer, other_customer):
    response = api(customer).post(
        "/api/tickets/",
        {"subject": "x", "description": "y", "requester": other_customer.pk},
        format="json",
    )

    assert response.status_code == 400
    assert "requester" in response.json()


@pytest.mark.django_db
def test_agents_open_on_behalf_of_a_customer(agent, customer):
    response = api(agent).post(
        "/api/tickets/",
        {"subject": "Phoned in", "description": "Called about SSO", "requester": customer.pk},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["requester"]["id"] == customer.pk


# ---- actions ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_illegal_transition_answers_409_and_changes_nothing(ticket, agent):
    response = api(agent).post(url(ticket, "reopen/"))

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    ticket.refresh_from_db()
    assert ticket.status == "new" and ticket.events.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["close/", "reopen/", "assign/", "saved-reply/"])
def test_customers_cannot_use_agent_actions(ticket, customer, action):
    response = api(customer).post(url(ticket, action), {}, format="json")

    assert response.status_code == 403


@pytest.mark.django_db
def test_customers_cannot_patch_tickets(ticket, customer):
    response = api(customer).patch(url(ticket), {"priority": "urgent"}, format="json")

    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.priority == "normal"


@pytest.mark.django_db
def test_agent_patches_priority_type_and_subject_through_services(ticket, agent):
    response = api(agent).patch(
        url(ticket), {"priority": "urgent", "type": "bug", "subject": "Export hangs"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["priority"], response.json()["type"]) == ("urgent", "bug")
    kinds = sorted(ticket.events.values_list("kind", flat=True))
    assert kinds == ["created", "field_changed", "field_changed", "priority_changed"]


@pytest.mark.django_db
def test_customer_asks_for_a_human(ticket, customer):
    response = api(customer).post(
        url(ticket, "escalate/"), {"reason": "I want a person", "kind": "policy"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["kind"] == "customer_requested"  # customers cannot pick the kind


@pytest.mark.django_db
def test_assign_defaults_to_me_and_null_unassigns(ticket, agent):
    assert (
        api(agent).post(url(ticket, "assign/"), {}, format="json").json()["assignee"]["id"]
        == agent.pk
    )
    assert (
        api(agent)
        .post(url(ticket, "assign/"), {"assignee": None}, format="json")
        .json()["assignee"]
        is None
    )


@pytest.mark.django_db
def test_assign_to_a_customer_is_a_field_error(ticket, agent, customer):
    response = api(agent).post(url(ticket, "assign/"), {"assignee": customer.pk}, format="json")

    assert response.status_code == 400
    assert "assignee" in response.json()


@pytest.mark.django_db
def test_rating_flow(ticket, agent, customer, colleague):
    assert api(customer).post(url(ticket, "rate/"), {"rating": 5}, format="json").status_code == 409
    api(agent).post(url(ticket, "resolve/"))

    assert api(customer).post(url(ticket, "rate/"), {"rating": 9}, format="json").status_code == 400
    ok = api(customer).post(url(ticket, "rate/"), {"rating": 4, "comment": "Good"}, format="json")

    assert ok.status_code == 200
    assert ok.json()["satisfaction_rating"] == 4


@pytest.mark.django_db
def test_requester_may_resolve_but_a_colleague_sees_nothing(ticket, customer, colleague):
    assert api(colleague).post(url(ticket, "resolve/")).status_code == 404
    assert api(customer).post(url(ticket, "resolve/")).json()["status"] == "resolved"


@pytest.mark.django_db
def test_messages_customer_reply_and_agent_note(ticket, customer, agent):
    created = api(customer).post(url(ticket, "messages/"), {"body": "Any update?"}, format="json")
    refused = api(customer).post(
        url(ticket, "messages/"), {"body": "x", "is_internal": True}, format="json"
    )
    noted = api(agent).post(
        url(ticket, "messages/"), {"body": "Check logs", "is_internal": True}, format="json"
    )

    assert created.status_code == 201 and created.json()["sender_kind"] == "customer"
    assert refused.status_code == 400 and "is_internal" in refused.json()
    assert noted.status_code == 201 and noted.json()["is_internal"] is True


@pytest.mark.django_db
def test_saved_reply_applied_over_the_api(ticket, agent):
    reply = SavedReplyFactory(body="Hello {{ customer.first_name }}", new_status="resolved")

    listing = api(agent).get("/api/saved-replies/").json()
    response = api(agent).post(
        url(ticket, "saved-reply/"), {"saved_reply": reply.pk}, format="json"
    )

    assert [r["id"] for r in listing] == [reply.pk]
    assert response.status_code == 201 and response.json()["body"] == "Hello Casey"
    ticket.refresh_from_db()
    assert ticket.status == "resolved"


@pytest.mark.django_db
def test_filters_for_agents(customer, agent):
    mine = services.ticket_open(requester=customer, subject="A", description="a", priority="urgent")
    services.ticket_assign(ticket=mine, assignee=agent, actor=agent)
    other = services.ticket_open(requester=customer, subject="B", description="b")

    def refs(query):
        return [t["reference"] for t in api(agent).get(f"/api/tickets/?{query}").json()["results"]]

    assert refs("mine=true") == [mine.reference]
    assert refs("unassigned=true") == [other.reference]
    assert refs("priority=urgent") == [mine.reference]
    assert refs(f"search={other.reference}") == [other.reference]
    assert refs("status=resolved") == []


# ---- queries ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 30])
def test_ticket_list_queries_do_not_grow_with_the_page(
    agent, org_a, count, django_assert_max_num_queries
):
    for i in range(count):
        requester = CustomerFactory(username=f"c{i}", profile__organization=org_a)
        t = services.ticket_open(requester=requester, subject=f"T{i}", description="d")
        services.ticket_assign(ticket=t, assignee=agent, actor=agent)
    client = api(agent)

    with django_assert_max_num_queries(4):  # session-less: count, page, no per-row query
        response = client.get("/api/tickets/?page_size=50")

    assert response.status_code == 200
    assert len(response.json()["results"]) == count


@pytest.mark.django_db
def test_message_list_queries_are_bounded(ticket, agent, customer, django_assert_max_num_queries):
    for i in range(10):
        services.message_add(
            ticket=ticket,
            author=agent if i % 2 else customer,
            body=f"m{i}",
            attachments=[SimpleUploadedFile(f"{i}.txt", b"x")],
        )

    with django_assert_max_num_queries(5):
        response = api(agent).get(url(ticket, "messages/"))

    assert len(response.json()) == 11


@pytest.mark.django_db
def test_token_auth_end_to_end(customer):
    token = (
        APIClient()
        .post(
            "/api/auth/token/",
            {"username": "customer-a", "password": "correct-horse-battery"},
            format="json",
        )
        .json()["token"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.get("/api/tickets/").status_code == 200


@pytest.mark.django_db
def test_schema_documents_the_ticket_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    for path in [
        "/api/tickets/",
        "/api/tickets/{reference}/",
        "/api/tickets/{reference}/messages/",
        "/api/tickets/{reference}/events/",
        "/api/tickets/{reference}/rate/",
        "/api/tickets/{reference}/escalate/",
        "/api/saved-replies/",
    ]:
        assert path in schema["paths"], path
    create = schema["paths"]["/api/tickets/"]["post"]
    assert "multipart/form-data" in create["requestBody"]["content"]
