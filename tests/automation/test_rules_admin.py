"""Rules in admin: who sees and edits them, the JSON editor's error messages, the preview
on the rule's page and for unsaved edits, enable/disable, and bounded queries."""

import pytest
from django.urls import reverse

from automation.models import Rule, RuleFiring
from automation.services import rules as services
from support.services import ticket_open


@pytest.fixture(autouse=True)
def _no_default_rules(request, db):
    """The shipped rules (a data migration) stay out of these counts and lists."""
    if request.function.__name__.startswith("test_shipped_rules"):
        return
    Rule.objects.filter(is_default=True).delete()


ADD = "/admin/automation/rule/add/"
CHANGELIST = "/admin/automation/rule/"
FIRINGS = "/admin/automation/rulefiring/"

BILLING = (
    '{"match": "all", "conditions": [{"field": "type", "operator": "is", "value": "billing"}]}'
)
BAD_PATTERN = '{"conditions": [{"field": "text", "operator": "matches", "value": "(["}]}'
HIGH = '[{"type": "set_priority", "priority": "high"}]'


def form(**overrides):
    data = {
        "name": "Billing is high",
        "description": "",
        "trigger": "ticket_created",
        "position": "10",
        "since": "",
        "delay": "",
        "delay_unit": "",
        "conditions": BILLING,
        "actions": HIGH,
    }
    data.update(overrides)
    return data


def make_rule(manager, **overrides):
    fields = {
        "name": "Billing is high",
        "trigger": "ticket_created",
        "conditions": {
            "match": "all",
            "conditions": [{"field": "type", "operator": "is", "value": "billing"}],
        },
        "actions": [{"type": "set_priority", "priority": "high"}],
        **overrides,
    }
    return services.rule_create(actor=manager, **fields)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("viewer", "listing", "adding"),
    [("customer", 302, 302), ("agent", 200, 403), ("manager", 200, 200)],
)
def test_agents_see_rules_managers_edit_them(request, client, viewer, listing, adding):
    client.force_login(request.getfixturevalue(viewer))

    assert client.get(CHANGELIST).status_code == listing
    assert client.get(ADD).status_code == adding


@pytest.mark.django_db
def test_the_editor_lists_fields_operators_and_actions(client, manager):
    client.force_login(manager)

    html = client.get(ADD).content.decode()

    assert "<code>requester_domain</code>" in html
    assert "not_contains" in html
    assert "<code>assign_round_robin</code>" in html
    assert "created disabled" in html


@pytest.mark.django_db
def test_a_new_rule_is_saved_disabled_through_the_service(client, manager):
    client.force_login(manager)

    response = client.post(ADD, form())

    rule = Rule.objects.get()
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:automation_rule_change", args=[rule.pk]))
    assert not rule.is_enabled
    assert rule.created_by == manager
    assert rule.conditions["conditions"][0]["value"] == "billing"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"conditions": "{not json"}, "Enter a valid JSON."),
        (
            {"conditions": '{"conditions": [{"field": "mood", "operator": "is", "value": 1}]}'},
            "unknown field",
        ),
        (
            {"conditions": BAD_PATTERN},
            "not a valid regular expression",
        ),
        ({"actions": '[{"type": "assign_team", "team": 424242}]'}, "no team"),
        ({"actions": "[]"}, ""),
        ({"trigger": "time_elapsed", "since": "created", "delay_unit": "days"}, "delay"),
        ({"delay": "3"}, "Only time rules"),
    ],
)
def test_bad_input_shows_form_errors_and_saves_nothing(client, manager, overrides, message):
    client.force_login(manager)

    response = client.post(ADD, form(**overrides))

    assert response.status_code == 200  # the form again, with its errors
    html = response.content.decode()
    assert "errorlist" in html
    assert message in html
    assert not Rule.objects.exists()


@pytest.mark.django_db
def test_change_page_shows_the_preview_with_links_to_tickets(client, manager, customer):
    billing = ticket_open(requester=customer, subject="Invoice", description="x", type="billing")
    ticket_open(requester=customer, subject="Login", description="y", type="account")
    rule = make_rule(manager)
    client.force_login(manager)

    html = client.get(reverse("admin:automation_rule_change", args=[rule.pk])).content.decode()

    assert "Would have matched 1 of the last 2 tickets." in html
    assert reverse("admin:support_ticket_change", args=[billing.pk]) in html
    assert "Preview these conditions" in html


@pytest.mark.django_db
def test_preview_of_unsaved_edits(client, agent, customer):
    for i in range(3):
        ticket_open(requester=customer, subject=f"Refund {i}", description="x", type="billing")
    ticket_open(requester=customer, subject="Other", description="y", type="account")
    client.force_login(agent)
    url = reverse("admin:automation_rule_preview")

    good = client.post(url, form(conditions=BILLING)).content.decode()
    bad = client.post(url, form(conditions="{oops")).content.decode()

    assert "Would have matched 3 of the last 4 tickets." in good
    assert "not valid JSON" in bad
    assert not Rule.objects.exists()


@pytest.mark.django_db
def test_enabling_after_the_preview_through_the_form_and_the_actions(client, manager):
    rule = make_rule(manager)
    other = make_rule(manager, name="Other")
    client.force_login(manager)
    change = reverse("admin:automation_rule_change", args=[rule.pk])

    client.post(change, form(is_enabled="on"))
    rule.refresh_from_db()
    assert rule.is_enabled

    client.post(
        CHANGELIST,
        {"action": "disable_rules", "_selected_action": [rule.pk, other.pk]},
    )
    assert not Rule.objects.filter(is_enabled=True).exists()
    client.post(CHANGELIST, {"action": "enable_rules", "_selected_action": [other.pk]})
    assert list(Rule.objects.filter(is_enabled=True)) == [other]


@pytest.mark.django_db
def test_delete_goes_through_the_service(client, manager):
    rule = make_rule(manager)
    client.force_login(manager)

    client.post(reverse("admin:automation_rule_delete", args=[rule.pk]), {"post": "yes"})

    assert not Rule.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("count", [2, 30])
def test_changelists_queries_do_not_grow(
    client, manager, customer, count, django_assert_max_num_queries
):
    ticket = ticket_open(requester=customer, subject="S", description="d")
    for i in range(count):
        rule = make_rule(manager, name=f"Rule {i}")
        for n in range(3):
            RuleFiring.objects.create(rule=rule, ticket=ticket, key=f"k{n}", outcome=[])
    client.force_login(manager)

    with django_assert_max_num_queries(12):
        rules = client.get(CHANGELIST)
    with django_assert_max_num_queries(12):
        firings = client.get(FIRINGS)

    assert rules.status_code == 200 and firings.status_code == 200
    assert rules.content.decode().count('class="field-name"') == count
    assert f"?rule__id__exact={rule.pk}" in rules.content.decode()  # links its 3 firings
    assert firings.content.decode().count(ticket.reference) >= 3 * count


@pytest.mark.django_db
def test_firings_are_read_only(client, manager, customer):
    rule = make_rule(manager)
    ticket = ticket_open(requester=customer, subject="S", description="d")
    firing = RuleFiring.objects.create(rule=rule, ticket=ticket, key="k", outcome=[])
    client.force_login(manager)

    page = client.get(reverse("admin:automation_rulefiring_change", args=[firing.pk]))

    assert page.status_code == 200
    assert client.get(f"{FIRINGS}add/").status_code == 403


@pytest.mark.django_db
def test_shipped_rules_pages_render(client, manager, settings):
    settings.DEBUG = False
    client.force_login(manager)
    shipped = list(Rule.objects.filter(is_default=True))

    listing = client.get(CHANGELIST)

    assert listing.status_code == 200
    for rule in shipped:
        page = client.get(reverse("admin:automation_rule_change", args=[rule.pk]))
        assert page.status_code == 200, rule.name
        assert "Would have matched" in page.content.decode()
        services.rule_validate({name: getattr(rule, name) for name in services.EDITABLE})
