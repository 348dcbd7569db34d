"""The rules API: who may read and change rules, the validation messages a client gets,
the preview, the firings, the vocabulary endpoint and the schema."""

import pytest
from rest_framework.test import APIClient

from automation.models import Rule, RuleFiring
from automation.services import rules as services
from tests.factories import AgentFactory, SavedReplyFactory, TeamFactory


@pytest.fixture(autouse=True)
def _no_default_rules(db):
    """The shipped rules (a data migration) stay out of these counts and lists."""
    from automation.models import Rule

    Rule.objects.filter(is_default=True).delete()


RULES = "/api/automation/rules/"


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def payload(**overrides):
    return {
        "name": "Urgent to billing",
        "trigger": "ticket_created",
        "conditions": {
            "match": "all",
            "conditions": [{"field": "type", "operator": "is", "value": "billing"}],
        },
        "actions": [{"type": "set_priority", "priority": "high"}],
        **overrides,
    }


@pytest.fixture
def rule(manager):
    return services.rule_create(actor=manager, **payload(name="Existing"))


# ---- permissions -------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_callers_are_asked_to_log_in(rule):
    assert api().get(RULES).status_code == 401
    assert api().post(RULES, payload(), format="json").status_code == 401


@pytest.mark.django_db
def test_customers_get_403_everywhere(customer, rule):
    client = api(customer)
    assert client.get(RULES).status_code == 403
    assert client.get(f"{RULES}{rule.pk}/").status_code == 403
    assert client.post(RULES, payload(), format="json").status_code == 403
    assert client.post(f"{RULES}{rule.pk}/preview/").status_code == 403
    assert client.get("/api/automation/fields/").status_code == 403


@pytest.mark.django_db
def test_agents_read_and_preview_but_do_not_change_rules(agent, rule):
    client = api(agent)
    assert [r["name"] for r in client.get(RULES).json()["results"]] == ["Existing"]
    assert client.post(f"{RULES}{rule.pk}/preview/").status_code == 200
    assert client.get(f"{RULES}{rule.pk}/firings/").status_code == 200

    created = client.post(RULES, payload(), format="json")
    changed = client.patch(f"{RULES}{rule.pk}/", {"is_enabled": True}, format="json")
    deleted = client.delete(f"{RULES}{rule.pk}/")

    assert (created.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    assert "managers" in created.json()["detail"]
    rule.refresh_from_db()
    assert not rule.is_enabled


@pytest.mark.django_db
def test_managers_create_change_enable_and_delete_rules(manager):
    client = api(manager)

    created = client.post(RULES, payload(), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["is_enabled"] is False  # new rules wait for their preview
    assert body["created_by"] == manager.username
    assert body["conditions"]["conditions"][0] == {
        "field": "type",
        "operator": "is",
        "value": "billing",
    }

    enabled = client.patch(f"{RULES}{body['id']}/", {"is_enabled": True}, format="json")
    assert enabled.status_code == 200 and enabled.json()["is_enabled"] is True

    assert client.delete(f"{RULES}{body['id']}/").status_code == 204
    assert not Rule.objects.filter(pk=body["id"]).exists()


@pytest.mark.django_db
def test_list_filters_by_trigger_and_enabled(manager):
    services.rule_create(actor=manager, **payload(name="A", is_enabled=True))
    services.rule_create(
        actor=manager,
        **payload(
            name="B",
            trigger="time_elapsed",
            since="created",
            delay=2,
            delay_unit="days",
        ),
    )
    client = api(manager)

    by_trigger = client.get(RULES, {"trigger": "time_elapsed"}).json()["results"]
    enabled = client.get(RULES, {"is_enabled": "true"}).json()["results"]

    assert [r["name"] for r in by_trigger] == ["B"]
    assert [r["name"] for r in enabled] == ["A"]
    assert client.get(RULES, {"is_enabled": "perhaps"}).status_code == 400


# ---- validation ---------------------------------------------------------------------------


BAD = [
    (
        {"conditions": {"conditions": [{"field": "mood", "operator": "is", "value": "x"}]}},
        "conditions",
        "unknown field",
    ),
    (
        {"conditions": {"conditions": [{"field": "type", "operator": "gt", "value": "bug"}]}},
        "conditions",
        "cannot use",
    ),
    (
        {"conditions": {"conditions": [{"field": "text", "operator": "matches", "value": "("}]}},
        "conditions",
        "regular expression",
    ),
    ({"actions": [{"type": "assign_team", "team": 999999}]}, "actions", "no team"),
    ({"actions": [{"type": "teleport"}]}, "actions", "unknown type"),
    ({"actions": []}, "actions", "at least one action"),
    ({"trigger": "time_elapsed", "since": "created", "delay_unit": "days"}, "delay", "delay"),
    ({"trigger": "time_elapsed", "delay": 3, "delay_unit": "days"}, "since", "counts from"),
    ({"delay": 3}, "delay", "Only time rules"),
    ({"trigger": "sometimes"}, "trigger", "valid choice"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("overrides", "field", "words"), BAD)
def test_bad_input_answers_400_on_its_field(manager, overrides, field, words):
    response = api(manager).post(RULES, payload(**overrides), format="json")

    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert words.lower() in " ".join(response.json()[field]).lower()
    assert not Rule.objects.exists()


@pytest.mark.django_db
def test_an_assignee_must_be_an_active_agent_and_a_saved_reply_active(manager, customer):
    reply = SavedReplyFactory(is_active=False)
    client = api(manager)

    to_customer = client.post(
        RULES, payload(actions=[{"type": "assign_person", "user": customer.pk}]), format="json"
    )
    archived = client.post(
        RULES,
        payload(actions=[{"type": "send_saved_reply", "saved_reply": reply.pk}]),
        format="json",
    )

    assert to_customer.status_code == 400 and "actions" in to_customer.json()
    assert archived.status_code == 400 and "archived" in archived.json()["actions"][0]


@pytest.mark.django_db
def test_duplicate_names_are_refused(manager, rule):
    response = api(manager).post(RULES, payload(name="existing"), format="json")
    assert response.status_code == 400 and "name" in response.json()


@pytest.mark.django_db
def test_a_time_rule_with_its_timing_is_accepted(manager):
    team = TeamFactory(name="Billing")
    agent = AgentFactory(username="billing-agent")
    response = api(manager).post(
        RULES,
        payload(
            trigger="time_elapsed",
            since="status_entered",
            delay=3,
            delay_unit="days",
            actions=[
                {"type": "assign_team", "team": team.pk},
                {"type": "assign_person", "user": agent.pk},
            ],
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["delay"], response.json()["delay_unit"]) == (3, "days")


@pytest.mark.django_db
def test_reorder_gives_positions_in_the_order_given(manager):
    first = services.rule_create(actor=manager, **payload(name="First"))
    second = services.rule_create(actor=manager, **payload(name="Second"))

    response = api(manager).post(
        f"{RULES}reorder/", {"rule_ids": [second.pk, first.pk]}, format="json"
    )

    assert response.status_code == 200
    assert [r["name"] for r in api(manager).get(RULES).json()["results"]] == ["Second", "First"]


# ---- preview, firings, vocabulary ---------------------------------------------------------


@pytest.mark.django_db
def test_preview_of_unsaved_fields(agent, customer):
    from support.services import ticket_open

    ticket_open(requester=customer, subject="Invoice wrong", description="x", type="billing")
    ticket_open(requester=customer, subject="Login", description="y", type="account")

    response = api(agent).post(
        f"{RULES}preview/",
        {"trigger": "ticket_created", "conditions": payload()["conditions"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["matched"], body["examined"]) == (1, 2)
    assert body["summary"] == "Would have matched 1 of the last 2 tickets."
    assert body["examples"][0]["subject"] == "Invoice wrong"
    assert "type is billing" in body["examples"][0]["why"]


@pytest.mark.django_db
def test_preview_of_bad_conditions_is_a_400(agent):
    response = api(agent).post(
        f"{RULES}preview/",
        {"trigger": "ticket_created", "conditions": {"conditions": [{"field": "nope"}]}},
        format="json",
    )
    assert response.status_code == 400 and "conditions" in response.json()


@pytest.mark.django_db
def test_firings_list_the_tickets_a_rule_fired_on(agent, rule, ticket):
    RuleFiring.objects.create(rule=rule, ticket=ticket, key="event:1", outcome=[{"a": 1}])

    response = api(agent).get(f"{RULES}{rule.pk}/firings/")

    assert response.status_code == 200
    assert [f["ticket"] for f in response.json()["results"]] == [ticket.reference]
    listed = api(agent).get(RULES).json()["results"][0]
    assert listed["firings_last_7_days"] == 1


@pytest.mark.django_db
def test_fields_describe_conditions_and_actions(agent):
    body = api(agent).get("/api/automation/fields/").json()

    fields = {f["name"]: f for f in body["fields"]}
    actions = {a["name"]: a for a in body["actions"]}
    assert "contains" in [op["name"] for op in fields["text"]["operators"]]
    assert "urgent" in [c["value"] for c in fields["priority"]["choices"]]
    assert [arg["name"] for arg in actions["assign_team"]["args"]] == ["team"]
    assert "time_elapsed" in [t["value"] for t in body["triggers"]]
    assert body["example"]["actions"]


@pytest.mark.django_db
def test_schema_documents_the_endpoints(agent):
    schema = api(agent).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for endpoint in [
        "/api/automation/rules/",
        "/api/automation/rules/{id}/",
        "/api/automation/rules/{id}/preview/",
        "/api/automation/rules/preview/",
        "/api/automation/rules/{id}/firings/",
        "/api/automation/rules/reorder/",
        "/api/automation/fields/",
    ]:
        assert endpoint in paths, endpoint


@pytest.mark.django_db
def test_the_documented_examples_are_valid_rules():
    for example in (services.EXAMPLE, services.TIME_EXAMPLE):
        services.rule_validate(example)
