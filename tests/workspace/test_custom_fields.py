"""Custom fields: definitions, values checked against them, required per ticket type,
what customers see and fill in, events, the filter (on the GIN index), the API and its
schema, the admin ticket page, the portal and rules."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from automation import actions
from automation.models import Rule
from core.errors import DomainError, NotPermitted
from support import custom_fields as cf
from support import services
from support.models import CustomField, Ticket, TicketEvent
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def define(key, kind, **fields) -> CustomField:
    return CustomField.objects.create(
        key=key, label=fields.pop("label", key.title()), kind=kind, **fields
    )


@pytest.fixture
def fields(db):
    """Order number (customers fill it in; required for billing), Device (customers fill
    it in), Plan tier (team only, required for billing), VIP (team only), Seats, Renewal."""
    return {
        "order_number": define(
            "order_number",
            "text",
            label="Order number",
            required_for_types=["billing"],
            customer_visible=True,
            customer_editable=True,
            position=1,
        ),
        "device": define(
            "device",
            "multi_choice",
            label="Device",
            choices=["web", "ios", "android"],
            customer_visible=True,
            customer_editable=True,
            position=2,
        ),
        "plan_tier": define(
            "plan_tier",
            "choice",
            label="Plan tier",
            choices=["starter", "enterprise"],
            required_for_types=["billing"],
            position=3,
        ),
        "vip": define("vip", "boolean", label="VIP", position=4),
        "seats": define("seats", "number", label="Seats", customer_visible=True, position=5),
        "renewal": define("renewal", "date", label="Renewal", position=6),
    }


def billing_ticket(customer, **values) -> Ticket:
    return services.ticket_open(
        requester=customer,
        subject="Invoice",
        description="Wrong amount",
        type="billing",
        custom_fields={"order_number": "A-1", **values},
    )


# ---- values against their definitions ----------------------------------------------------

VALID = [
    ("text", "  A-1001 ", "A-1001"),
    ("number", 3, 3),
    ("number", 2.5, 2.5),
    ("number", "42", 42),
    ("number", "-1.5", -1.5),
    ("number", 4.0, 4),
    ("date", "2026-03-01", "2026-03-01"),
    ("choice", "ios", "ios"),
    ("multi_choice", ["android", "web", "android"], ["web", "android"]),
    ("boolean", True, True),
    ("boolean", "on", True),
    ("boolean", "1", True),
    ("boolean", "false", False),
]
INVALID = [
    ("text", 12, "give text"),
    ("text", "x" * 1001, "at most 1000"),
    ("number", True, "give a number"),
    ("number", "12abc", "give a number"),
    ("number", "nan", "give a number"),
    ("number", [1], "give a number"),
    ("date", "01/03/2026", "YYYY-MM-DD"),
    ("date", "2026-02-30", "YYYY-MM-DD"),
    ("date", "20260301", "YYYY-MM-DD"),
    ("choice", "blackberry", "not one of: web, ios, android"),
    ("choice", ["web"], "not one of"),
    ("multi_choice", "web", "give a list"),
    ("multi_choice", ["web", "palm"], "“palm” is not one of"),
    ("boolean", "maybe", "true or false"),
    ("boolean", 1, "true or false"),
]


def _definition(kind) -> CustomField:
    return CustomField(key="thing", label="Thing", kind=kind, choices=["web", "ios", "android"])


@pytest.mark.parametrize(("kind", "value", "stored"), VALID)
def test_a_value_that_fits_its_kind_is_stored_in_its_shape(kind, value, stored):
    cleaned = cf.clean_values({"thing": value}, fields=[_definition(kind)], ticket_type="general")

    assert cleaned == {"thing": stored}
    assert type(cleaned["thing"]) is type(stored)


@pytest.mark.parametrize(("kind", "value", "message"), INVALID)
def test_a_value_that_does_not_fit_is_refused_naming_the_field(kind, value, message):
    with pytest.raises(cf.CustomFieldError) as refused:
        cf.clean_values({"thing": value}, fields=[_definition(kind)], ticket_type="general")

    assert refused.value.field == "custom_fields"
    assert "Thing" in refused.value.message and message in refused.value.message
    assert list(refused.value.as_dict()["custom_fields"]) == ["thing"]


def test_unknown_keys_and_fields_the_customer_may_not_fill_in_are_refused(fields):
    definitions = cf.active_fields()

    with pytest.raises(cf.CustomFieldError) as refused:
        cf.clean_values(
            {"nope": "x", "plan_tier": "starter", "order_number": "A-1"},
            fields=definitions,
            ticket_type="billing",
            for_customer=True,
        )

    assert refused.value.errors == {
        "nope": ["There is no custom field “nope”."],
        "plan_tier": ["Plan tier: only the support team fills this in."],
    }


def test_empty_values_remove_in_a_partial_update_and_are_left_out_otherwise(fields):
    definitions = cf.active_fields()
    values = {"order_number": "", "device": [], "seats": None}

    assert cf.clean_values(values, fields=definitions, ticket_type="general") == {}
    assert cf.clean_values(values, fields=definitions, ticket_type="general", partial=True) == {
        "order_number": None,
        "device": None,
        "seats": None,
    }


def test_active_fields_is_one_query_in_position_order(fields, django_assert_num_queries):
    fields["vip"].is_active = False
    fields["vip"].save()

    with django_assert_num_queries(1):
        keys = [f.key for f in cf.active_fields()]

    assert keys == ["order_number", "device", "plan_tier", "seats", "renewal"]


# ---- required per ticket type ---------------------------------------------------------------


def test_opening_a_billing_ticket_asks_the_customers_required_fields(customer, fields):
    with pytest.raises(cf.CustomFieldError) as refused:
        services.ticket_open(
            requester=customer,
            subject="Invoice",
            description="Wrong amount",
            type="billing",
            custom_fields={},
        )
    assert refused.value.errors == {
        "order_number": ["Order number is required for billing tickets."]
    }  # plan tier is the team's: not asked of the customer

    ticket = billing_ticket(customer, device=["ios"])
    general = services.ticket_open(
        requester=customer, subject="Hi", description="Question", custom_fields={}
    )

    assert ticket.custom_fields == {"order_number": "A-1", "device": ["ios"]}
    assert general.custom_fields == {}


def test_a_ticket_by_email_opens_without_fields(customer, fields):
    ticket = services.ticket_open(
        requester=customer, subject="Invoice", description="d", type="billing", channel="email"
    )

    assert ticket.custom_fields == {}


def test_an_agent_resolves_only_once_the_teams_required_fields_are_filled_in(
    customer, agent, fields
):
    ticket = billing_ticket(customer)

    with pytest.raises(DomainError, match="Fill in Plan tier before resolving"):
        services.ticket_resolve(ticket=ticket, actor=agent)
    with pytest.raises(DomainError, match="Plan tier"):
        services.message_reply(ticket=ticket, author=agent, body="Done.", resolve=True)
    assert ticket.messages.count() == 1  # the reply went back with the refusal

    services.ticket_set_custom_fields(ticket=ticket, values={"plan_tier": "starter"}, actor=agent)
    services.ticket_resolve(ticket=ticket, actor=agent)

    assert Ticket.objects.get(pk=ticket.pk).status == "resolved"


@pytest.mark.parametrize("who", ["customer", "ai", "system"])
def test_the_requester_the_ai_and_rules_are_not_held_back(customer, fields, who):
    ticket = billing_ticket(customer)
    actor = customer if who == "customer" else None

    services.ticket_resolve(ticket=ticket, actor=actor, actor_kind=None if actor else who)

    assert Ticket.objects.get(pk=ticket.pk).status == "resolved"


def test_a_required_value_cannot_be_removed(customer, agent, fields):
    ticket = billing_ticket(customer)

    with pytest.raises(cf.CustomFieldError, match="Order number is required"):
        services.ticket_set_custom_fields(ticket=ticket, values={"order_number": ""}, actor=agent)


# ---- setting values: who, events ---------------------------------------------------------------


def test_each_changed_value_is_one_event_and_a_live_update(
    customer, agent, fields, django_capture_on_commit_callbacks
):
    ticket = billing_ticket(customer, device=["web"])

    with django_capture_on_commit_callbacks() as callbacks:
        services.ticket_set_custom_fields(
            ticket=ticket,
            values={
                "order_number": "A-1",  # unchanged
                "device": ["ios", "web"],
                "vip": True,
                "seats": "12",
                "renewal": "2027-01-31",
            },
            actor=agent,
        )

    ticket.refresh_from_db()
    assert ticket.custom_fields == {
        "order_number": "A-1",
        "device": ["web", "ios"],
        "vip": True,
        "seats": 12,
        "renewal": "2027-01-31",
    }
    changed = TicketEvent.objects.filter(ticket=ticket, kind="field_changed").order_by("pk")
    assert [(e.field, e.old_value, e.new_value, e.is_internal) for e in changed] == [
        ("device", "web", "web, ios", False),
        ("vip", "", "Yes", True),  # team-only fields: internal events
        ("seats", "", "12", False),
        ("renewal", "", "2027-01-31", True),
    ]
    assert all(e.metadata == {"custom_field": e.field} for e in changed)
    assert all(e.actor_id == agent.pk for e in changed)
    assert callbacks  # the live update after commit

    services.ticket_set_custom_fields(ticket=ticket, values={"vip": None}, actor=agent)
    ticket.refresh_from_db()
    assert "vip" not in ticket.custom_fields
    last = TicketEvent.objects.filter(ticket=ticket).latest("pk")
    assert (last.field, last.old_value, last.new_value) == ("vip", "Yes", "")


def test_a_customer_fills_in_only_their_editable_fields_on_their_own_ticket(
    customer, other_customer, fields
):
    ticket = billing_ticket(customer)

    services.ticket_set_custom_fields(ticket=ticket, values={"device": ["android"]}, actor=customer)
    with pytest.raises(cf.CustomFieldError, match="only the support team"):
        services.ticket_set_custom_fields(ticket=ticket, values={"vip": True}, actor=customer)
    with pytest.raises(NotPermitted):
        services.ticket_set_custom_fields(
            ticket=ticket, values={"device": ["web"]}, actor=other_customer
        )

    ticket.refresh_from_db()
    assert ticket.custom_fields == {"order_number": "A-1", "device": ["android"]}
    event = TicketEvent.objects.filter(kind="field_changed").get()
    assert (event.actor_kind, event.is_internal) == ("customer", False)


# ---- definitions ------------------------------------------------------------------------


def test_managers_define_fields_the_key_never_changes(manager, agent, fields):
    with pytest.raises(NotPermitted):
        services.custom_field_save(field=CustomField(key="x", label="X", kind="text"), actor=agent)
    with pytest.raises(DomainError, match="at least one choice") as refused:
        services.custom_field_save(
            field=CustomField(key="size", label="Size", kind="choice", choices=[" ", ""]),
            actor=manager,
        )
    assert refused.value.field == "choices"

    size = services.custom_field_save(
        field=CustomField(
            key="size",
            label="Size",
            kind="choice",
            choices=["s", " m", "s"],
            customer_editable=True,
        ),
        actor=manager,
    )
    assert (size.choices, size.customer_visible) == (["s", "m"], True)

    size.key = "sizes"
    with pytest.raises(DomainError, match="cannot change") as refused:
        services.custom_field_save(field=size, actor=manager)
    assert refused.value.field == "key"


def test_a_removed_choice_leaves_the_values_readable(customer, agent, manager, fields):
    ticket = billing_ticket(customer)
    services.ticket_set_custom_fields(
        ticket=ticket, values={"plan_tier": "enterprise"}, actor=agent
    )
    tier = fields["plan_tier"]
    tier.choices = ["starter", "business"]
    services.custom_field_save(field=tier, actor=manager)

    response = api(agent).get(f"/api/tickets/{ticket.reference}/")

    assert response.json()["custom_fields"]["plan_tier"] == "enterprise"
    with pytest.raises(DomainError, match="its kind cannot change"):
        tier.kind = "text"
        services.custom_field_save(field=tier, actor=manager)


def test_deleting_a_field_tickets_use_deactivates_it(customer, manager, fields):
    billing_ticket(customer)

    assert services.custom_field_delete(field=fields["order_number"], actor=manager) is False
    assert services.custom_field_delete(field=fields["renewal"], actor=manager) is True

    fields["order_number"].refresh_from_db()
    assert fields["order_number"].is_active is False
    assert not CustomField.objects.filter(key="renewal").exists()


# ---- the filter -------------------------------------------------------------------------


def test_filter_q_parses_the_value_for_the_kind(fields):
    assert cf.filter_q(fields["seats"], "12") == cf.filter_q(fields["seats"], "12.0")
    q = cf.filter_q(fields["device"], "ios")
    assert q.children == [("custom_fields__contains", {"device": ["ios"]})]
    assert cf.filter_q(fields["vip"], "true").children == [
        ("custom_fields__contains", {"vip": True})
    ]
    for field, raw in [("seats", "many"), ("renewal", "tomorrow"), ("plan_tier", "gold")]:
        with pytest.raises(DomainError) as refused:
            cf.filter_q(fields[field], raw)
        assert refused.value.field == "custom_field"


def test_the_filter_uses_the_gin_index(customer, agent, fields):
    rows = [
        Ticket(
            reference=f"HD-CF-{i}",
            subject="s",
            description="d",
            requester=customer,
            custom_fields={"plan_tier": "enterprise" if i % 50 == 0 else "starter", "seats": i},
        )
        for i in range(2000)
    ]
    Ticket.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE support_ticket")
    queryset = Ticket.objects.filter(cf.parse_filter("plan_tier:enterprise", cf.active_fields()))

    sql = str(queryset.query)
    plan = queryset.explain()

    assert "custom_fields" in sql and "@>" in sql
    assert "ticket_custom_fields_idx" in plan, plan
    assert queryset.count() == 40


def test_the_api_filter_matches_every_condition(customer, agent, fields):
    a = billing_ticket(customer, device=["web", "ios"])
    b = billing_ticket(customer, device=["ios"])
    billing_ticket(customer, device=["android"])
    for ticket, tier in [(a, "enterprise"), (b, "starter")]:
        services.ticket_set_custom_fields(ticket=ticket, values={"plan_tier": tier}, actor=agent)

    def refs(*filters):
        response = api(agent).get("/api/tickets/", {"custom_field": list(filters)})
        assert response.status_code == 200, response.json()
        return {t["reference"] for t in response.json()["results"]}

    assert refs("device:ios") == {a.reference, b.reference}
    assert refs("device:ios", "plan_tier:enterprise") == {a.reference}
    assert refs("order_number:A-1", "device:web") == {a.reference}
    assert refs("device:ios", "plan_tier:starter") == {b.reference}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("seats:many", "Seats: give a number"),
        ("nope:1", "There is no custom field “nope”."),
        ("device", "key:value"),
        ("plan_tier:gold", "“gold” is not one of"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(agent, fields, raw, message):
    response = api(agent).get("/api/tickets/", {"custom_field": raw})

    assert response.status_code == 400
    assert message in response.json()["custom_field"][0]


def test_customers_filter_only_by_fields_shown_to_them(customer, fields):
    billing_ticket(customer)

    assert api(customer).get("/api/tickets/?custom_field=order_number:A-1").json()["count"] == 1
    hidden = api(customer).get("/api/tickets/?custom_field=plan_tier:starter")
    assert hidden.status_code == 400


# ---- the API --------------------------------------------------------------------------------


def test_customers_see_only_the_fields_shown_to_them(customer, agent, fields):
    ticket = billing_ticket(customer)
    services.ticket_set_custom_fields(
        ticket=ticket, values={"plan_tier": "starter", "seats": 3, "vip": False}, actor=agent
    )

    mine = api(customer).get(f"/api/tickets/{ticket.reference}/").json()
    staff = api(agent).get(f"/api/tickets/{ticket.reference}/").json()

    assert mine["custom_fields"] == {"order_number": "A-1", "seats": 3}
    assert staff["custom_fields"] == {
        "order_number": "A-1",
        "plan_tier": "starter",
        "seats": 3,
        "vip": False,
    }


def test_the_ticket_list_reads_the_definitions_once(
    customer, fields, django_assert_max_num_queries
):
    for _ in range(3):
        billing_ticket(customer)
    client = api(customer)
    client.get("/api/tickets/")

    for _ in range(12):
        billing_ticket(customer)
    with django_assert_max_num_queries(6):
        response = client.get("/api/tickets/")

    assert all(t["custom_fields"] == {"order_number": "A-1"} for t in response.json()["results"])


def test_create_through_the_api_checks_the_values(customer, agent, fields):
    missing = api(customer).post(
        "/api/tickets/",
        {"subject": "Invoice", "description": "Wrong", "type": "billing"},
        format="json",
    )
    wrong = api(customer).post(
        "/api/tickets/",
        {
            "subject": "Invoice",
            "description": "Wrong",
            "type": "billing",
            "custom_fields": {"order_number": "A-7", "device": "web", "vip": True},
        },
        format="json",
    )
    created = api(customer).post(
        "/api/tickets/",
        {
            "subject": "Invoice",
            "description": "Wrong",
            "type": "billing",
            "custom_fields": {"order_number": "A-7", "device": ["web"]},
        },
        format="json",
    )
    by_staff = api(agent).post(
        "/api/tickets/",
        {
            "subject": "Invoice",
            "description": "Wrong",
            "type": "billing",
            "requester": customer.pk,
            "custom_fields": {"order_number": "A-8", "plan_tier": "enterprise"},
        },
        format="json",
    )

    assert missing.status_code == 400
    assert missing.json() == {
        "custom_fields": {"order_number": ["Order number is required for billing tickets."]}
    }
    assert wrong.status_code == 400
    assert set(wrong.json()["custom_fields"]) == {"device", "vip"}
    assert created.status_code == 201, created.json()
    assert created.json()["custom_fields"] == {"order_number": "A-7", "device": ["web"]}
    assert by_staff.status_code == 201, by_staff.json()
    assert by_staff.json()["custom_fields"]["plan_tier"] == "enterprise"


def test_staff_patch_values_customers_cannot(customer, agent, fields):
    ticket = billing_ticket(customer)
    url = f"/api/tickets/{ticket.reference}/"

    patched = api(agent).patch(
        url, {"priority": "high", "custom_fields": {"seats": 5, "order_number": None}}, "json"
    )
    ok = api(agent).patch(url, {"custom_fields": {"seats": 5, "renewal": "2027-02-01"}}, "json")
    bad = api(agent).patch(url, {"subject": "New", "custom_fields": {"seats": "lots"}}, "json")
    customer_patch = api(customer).patch(url, {"custom_fields": {"device": ["web"]}}, "json")

    assert patched.status_code == 400  # a required value cannot be removed …
    assert patched.json()["custom_fields"]["order_number"]
    ticket.refresh_from_db()
    assert ticket.priority == "normal"  # … and nothing of the PATCH was kept
    assert ok.status_code == 200
    assert ok.json()["custom_fields"] == {
        "order_number": "A-1",
        "seats": 5,
        "renewal": "2027-02-01",
    }
    assert bad.status_code == 400
    assert bad.json() == {"custom_fields": {"seats": ["Seats: give a number, not “lots”."]}}
    ticket.refresh_from_db()
    assert ticket.subject == "Invoice"
    assert customer_patch.status_code == 403


def test_the_definitions_endpoint_by_role(customer, agent, manager, fields):
    fields["device"].is_active = False
    fields["device"].save()

    assert api().get("/api/custom-fields/").status_code == 401
    assert [f["key"] for f in api(customer).get("/api/custom-fields/").json()] == [
        "order_number",
        "seats",
    ]
    assert len(api(agent).get("/api/custom-fields/").json()) == 6
    new = {"key": "region", "label": "Region", "kind": "choice", "choices": ["eu", "us"]}
    assert api(customer).post("/api/custom-fields/", new, format="json").status_code == 403
    assert api(agent).post("/api/custom-fields/", new, format="json").status_code == 403

    created = api(manager).post("/api/custom-fields/", new, format="json")
    assert created.status_code == 201, created.json()
    region = created.json()["id"]
    renamed = api(manager).patch(f"/api/custom-fields/{region}/", {"key": "area"}, format="json")
    no_choices = api(manager).post(
        "/api/custom-fields/", {**new, "key": "zone", "choices": []}, format="json"
    )
    wrong_type = api(manager).post(
        "/api/custom-fields/", {**new, "key": "zone", "required_for_types": ["nope"]}, format="json"
    )
    numbers = api(manager).post(
        "/api/custom-fields/", {**new, "key": "zone", "choices": [0, 1]}, format="json"
    )
    assert numbers.status_code == 400
    assert numbers.json() == {"choices": ["Must be a string."]}
    assert renamed.status_code == 400 and "cannot change" in renamed.json()["key"][0]
    assert no_choices.status_code == 400 and no_choices.json()["choices"]
    assert wrong_type.status_code == 400 and wrong_type.json()["required_for_types"]

    assert api(manager).delete(f"/api/custom-fields/{region}/").status_code == 204
    billing_ticket(customer)
    kept = api(manager).delete(f"/api/custom-fields/{fields['order_number'].pk}/")
    assert kept.status_code == 200 and kept.json()["is_active"] is False


def test_the_schema_documents_custom_fields(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]

    assert "/api/custom-fields/" in schema["paths"]
    assert "/api/custom-fields/{id}/" in schema["paths"]
    output = components["Ticket"]["properties"]["custom_fields"]
    assert output["type"] == "object" and "/api/custom-fields/" in output["description"]
    assert components["TicketCreateRequest"]["properties"]["custom_fields"]["type"] == "object"
    assert "custom_fields" in components["PatchedTicketUpdateRequest"]["properties"]
    parameters = {p["name"]: p for p in schema["paths"]["/api/tickets/"]["get"]["parameters"]}
    assert parameters["custom_field"]["schema"]["type"] == "array"
    assert parameters["custom_field"]["explode"] is True


# ---- admin ------------------------------------------------------------------------------------


def test_agents_read_the_definitions_managers_change_them(client, agent, manager, fields):
    client.force_login(agent)
    assert client.get("/admin/support/customfield/").status_code == 200
    assert client.get(f"/admin/support/customfield/{fields['vip'].pk}/change/").status_code == 200
    assert client.get("/admin/support/customfield/add/").status_code == 403

    client.force_login(manager)
    refused = client.post(
        "/admin/support/customfield/add/",
        {"label": "Size", "key": "size", "kind": "choice", "choices": "", "position": 0},
    )
    assert refused.status_code == 200
    assert "A choice field needs at least one choice." in refused.content.decode()
    saved = client.post(
        "/admin/support/customfield/add/",
        {
            "label": "Size",
            "key": "size",
            "kind": "choice",
            "choices": "s\r\nm\r\n\r\nl",
            "required_for_types": ["bug"],
            "position": 0,
            "is_active": "on",
        },
    )
    assert saved.status_code == 302
    size = CustomField.objects.get(key="size")
    assert (size.choices, size.required_for_types) == (["s", "m", "l"], ["bug"])


def test_the_ticket_page_shows_and_saves_the_fields(client, customer, agent, fields):
    ticket = billing_ticket(customer, device=["web"])
    client.force_login(agent)
    page = client.get(reverse("admin:support_ticket_change", args=[ticket.pk])).content.decode()

    assert 'data-custom-field="plan_tier" data-missing' in page
    assert "Missing: Plan tier" in page
    assert 'name="cf_device" multiple' in page

    every = [f.key for f in fields.values()]
    act = reverse("admin:support_ticket_act", args=[ticket.pk, "custom_fields"])
    response = client.post(
        act,
        {
            "cf_fields": every,
            "cf_order_number": "A-1",
            "cf_device": ["web", "android"],
            "cf_plan_tier": "enterprise",
            "cf_vip": "",
            "cf_seats": "7",
            "cf_renewal": "",
        },
        follow=True,
    )
    ticket.refresh_from_db()

    assert "Saved 3 fields." in response.content.decode()
    assert ticket.custom_fields == {
        "order_number": "A-1",
        "device": ["web", "android"],
        "plan_tier": "enterprise",
        "seats": 7,
    }
    assert "Missing:" not in response.content.decode()

    refused = client.post(act, {"cf_fields": ["seats"], "cf_seats": "x"}, follow=True)
    assert "Seats: give a number" in refused.content.decode()


# ---- portal -------------------------------------------------------------------------------


def test_the_portal_form_asks_the_customers_fields(client, customer, fields):
    client.force_login(customer)
    page = client.get(reverse("support:ticket-new")).content.decode()
    assert 'name="cf_order_number"' in page and 'name="cf_device"' in page
    assert "cf_plan_tier" not in page and "cf_vip" not in page
    assert "required for billing" in page

    base = {"subject": "Invoice", "description": "Wrong amount", "type": "billing"}
    missing = client.post(reverse("support:ticket-new"), base)
    assert missing.status_code == 200
    assert "Order number is required for billing tickets." in missing.content.decode()
    assert not Ticket.objects.exists()

    client.post(
        reverse("support:ticket-new"), {**base, "cf_order_number": "A-9", "cf_device": ["ios"]}
    )
    ticket = Ticket.objects.get()
    assert ticket.custom_fields == {"order_number": "A-9", "device": ["ios"]}


def test_the_portal_ticket_page_shows_visible_values_and_edits_editable_ones(
    client, customer, agent, fields
):
    ticket = billing_ticket(customer)
    services.ticket_set_custom_fields(
        ticket=ticket, values={"plan_tier": "enterprise", "seats": 4}, actor=agent
    )
    client.force_login(customer)

    page = client.get(ticket.get_absolute_url()).content.decode()
    assert "A-1" in page and "Seats" in page
    assert "enterprise" not in page and "Plan tier" not in page

    url = reverse("support:ticket-fields", args=[ticket.reference])
    bad = client.post(url, {"cf_order_number": "x" * 1001})
    assert bad.status_code == 400
    client.post(url, {"cf_order_number": "A-2", "cf_device": ["web"]})
    ticket.refresh_from_db()
    assert ticket.custom_fields["order_number"] == "A-2"
    assert ticket.custom_fields["device"] == ["web"]

    stranger = CustomerFactory(username="stranger")
    client.force_login(stranger)
    assert client.post(url, {"cf_order_number": "A-3"}).status_code == 404


# ---- rules --------------------------------------------------------------------------------------


def test_a_rule_on_a_custom_field(customer, agent, fields):
    Rule.objects.filter(is_default=True).update(is_enabled=False)
    Rule.objects.create(
        name="Enterprise first",
        trigger="ticket_created",
        conditions={
            "match": "all",
            "conditions": [
                {"field": "custom_field", "operator": "is", "value": "plan_tier=enterprise"},
                {"field": "custom_field", "operator": "in", "value": ["device=ios", "vip=true"]},
            ],
        },
        actions=actions.validate([{"type": "set_priority", "priority": "urgent"}]),
        is_enabled=True,
    )

    def open_with(values):
        return services.ticket_open(
            requester=customer,
            subject="s",
            description="d",
            custom_fields=values,
            opened_by=agent,
        )

    assert open_with({"plan_tier": "enterprise", "device": ["web", "ios"]}).priority == "urgent"
    assert open_with({"plan_tier": "enterprise", "vip": True}).priority == "urgent"
    assert open_with({"plan_tier": "starter", "device": ["ios"]}).priority == "normal"
    assert open_with({"plan_tier": "enterprise", "device": ["web"]}).priority == "normal"


def test_rule_conditions_on_custom_fields_are_checked(fields):
    from automation import conditions

    spec = conditions.FIELDS["custom_field"].describe()
    assert {"value": "plan_tier=enterprise", "label": "Plan tier: enterprise"} in spec["choices"]
    assert {"value": "vip=true", "label": "VIP: yes"} in spec["choices"]
    with pytest.raises(DomainError, match="is not one of"):
        conditions.validate(
            {"conditions": [{"field": "custom_field", "operator": "is", "value": "plan_tier=gold"}]}
        )
