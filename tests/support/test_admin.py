"""The agent workspace in admin: the queue, the ticket page and its actions."""

import pytest
from django.urls import reverse
from django.utils import timezone

from support import services
from support.models import Organization, SavedReply, Team, TeamMembership, Ticket, TicketEvent
from tests.factories import CustomerFactory, SavedReplyFactory

CHANGELIST = "/admin/support/ticket/"


def act(client, ticket, action, **data):
    return client.post(reverse("admin:support_ticket_act", args=[ticket.pk, action]), data)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("viewer", "status"), [("customer", 302), ("agent", 200), ("manager", 200)]
)
def test_only_staff_reach_the_queue(request, client, ticket, viewer, status):
    client.force_login(request.getfixturevalue(viewer))

    assert client.get(CHANGELIST).status_code == status


@pytest.mark.django_db
@pytest.mark.parametrize("count", [2, 40])
def test_queue_queries_do_not_grow_with_the_page(
    client, agent, org_a, count, django_assert_max_num_queries
):
    for i in range(count):
        requester = CustomerFactory(username=f"q{i}", profile__organization=org_a)
        t = services.ticket_open(requester=requester, subject=f"T{i}", description="d")
        services.ticket_assign(ticket=t, assignee=agent, actor=agent)
    client.force_login(agent)

    with django_assert_max_num_queries(12):
        response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.content.decode().count('class="field-reference"') == count


@pytest.mark.django_db
def test_queue_filters(client, agent, customer):
    mine = services.ticket_open(requester=customer, subject="Mine", description="d")
    services.ticket_assign(ticket=mine, assignee=agent, actor=agent)
    late = services.ticket_open(requester=customer, subject="Late", description="d")
    Ticket.objects.filter(pk=late.pk).update(
        sla_due_at=timezone.now() - timezone.timedelta(hours=1)
    )
    client.force_login(agent)

    def shown(query):
        html = client.get(f"{CHANGELIST}?{query}").content.decode()
        return {t.reference for t in (mine, late) if t.reference in html}

    assert shown("assignee=mine") == {mine.reference}
    assert shown("assignee=unassigned") == {late.reference}
    assert shown("sla=breached") == {late.reference}
    assert shown(f"q={late.reference}") == {late.reference}
    assert shown("q=customer-a@example.com") == {mine.reference, late.reference}
    assert shown("o=-8") == {mine.reference, late.reference}  # sortable by age/SLA columns


@pytest.mark.django_db
def test_ticket_page_shows_conversation_notes_and_events(client, ticket, agent):
    services.message_add(
        ticket=ticket, author=agent, body="Internal: check Stripe", is_internal=True
    )
    client.force_login(agent)

    html = client.get(reverse("admin:support_ticket_change", args=[ticket.pk])).content.decode()

    assert "The export button spins forever." in html
    assert "hd-internal" in html and "Internal: check Stripe" in html
    assert "Event log" in html and "Created" in html
    assert 'name="_save"' not in html  # no field is edited directly


@pytest.mark.django_db
def test_reply_note_and_resolve_from_the_ticket_page(client, ticket, agent):
    client.force_login(agent)

    act(client, ticket, "reply", body="Internal thought", is_internal="on")
    act(client, ticket, "reply", body="Fixed it for you", and_resolve="on")

    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    assert list(ticket.messages.values_list("body", "is_internal"))[1:] == [
        ("Internal thought", True),
        ("Fixed it for you", False),
    ]


@pytest.mark.django_db
def test_each_button_calls_its_service(client, ticket, agent):
    reply = SavedReplyFactory(body="Hi {{ customer.first_name }}")
    client.force_login(agent)

    act(client, ticket, "assign_to_me")
    act(client, ticket, "priority", priority="high")
    act(client, ticket, "escalate", kind="complex", reason="Needs engineering", topic="")
    act(client, ticket, "saved_reply", saved_reply=reply.pk)
    act(client, ticket, "resolve")
    act(client, ticket, "reopen")
    act(client, ticket, "close")

    ticket.refresh_from_db()
    assert ticket.assignee == agent and ticket.priority == "high"
    assert ticket.status == "closed" and ticket.reopened_count == 1
    kinds = list(ticket.events.values_list("kind", flat=True))
    for kind in (
        "assigned",
        "priority_changed",
        "escalated",
        "message_added",
        "resolved",
        "reopened",
        "closed",
    ):
        assert kind in kinds


@pytest.mark.django_db
def test_a_refused_action_is_reported_and_changes_nothing(client, ticket, agent):
    client.force_login(agent)

    response = act(client, ticket, "reopen")
    page = client.get(response.url).content.decode()

    assert "Only a resolved or closed ticket can be reopened." in page
    ticket.refresh_from_db()
    assert ticket.status == "new"


@pytest.mark.django_db
def test_customers_cannot_use_the_action_endpoint(client, ticket, customer):
    client.force_login(customer)

    act(client, ticket, "resolve")

    ticket.refresh_from_db()
    assert ticket.status == "new"


@pytest.mark.django_db
def test_agents_cannot_delete_tickets_or_touch_events(client, ticket, agent):
    event = ticket.events.get()
    client.force_login(agent)

    assert client.get(f"{CHANGELIST}{ticket.pk}/delete/").status_code == 403
    assert client.post(f"/admin/support/ticketevent/{event.pk}/delete/").status_code == 403
    assert (
        client.post(
            f"/admin/support/ticketevent/{event.pk}/change/", {"new_value": "x"}
        ).status_code
        == 403
    )
    assert Ticket.objects.filter(pk=ticket.pk).exists()
    assert TicketEvent.objects.get(pk=event.pk).new_value == ticket.reference


@pytest.mark.django_db
def test_bulk_assign_to_me(client, agent, customer):
    tickets = [
        services.ticket_open(requester=customer, subject=f"B{i}", description="d") for i in range(3)
    ]
    client.force_login(agent)

    client.post(
        CHANGELIST, {"action": "assign_to_me_action", "_selected_action": [t.pk for t in tickets]}
    )

    assert Ticket.objects.filter(assignee=agent).count() == 3


@pytest.mark.django_db
def test_reply_and_resolve_is_one_change(client, ticket, agent):
    services.ticket_close(ticket=ticket, actor=agent)
    replies = ticket.messages.count()
    client.force_login(agent)

    response = act(client, ticket, "reply", body="Fixed it for you", and_resolve="on")
    page = client.get(response.url).content.decode()

    assert "A ticket that is closed cannot become resolved." in page
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    assert ticket.messages.count() == replies  # resolving failed: the reply was not kept


@pytest.mark.django_db
def test_rerun_ai_asks_for_an_analysis_or_a_draft(client, ticket, agent):
    from core.models import OutboxItem

    client.force_login(agent)

    first = client.get(act(client, ticket, "ai_rerun").url).content.decode()
    act(client, ticket, "assign_to_me")
    second = client.get(act(client, ticket, "ai_rerun").url).content.decode()

    assert "AI analysis queued." in first
    assert "AI draft requested: it will appear as an internal note." in second
    tasks = list(OutboxItem.objects.order_by("pk").values_list("task", "args"))
    assert ("support.tasks.analyze_ticket", [ticket.pk]) in tasks
    assert tasks[-1] == ("support.tasks.draft_answer", [ticket.pk])


ORGANIZATIONS = "/admin/support/organization/"


def organization_form(organization, **changes):
    data = {
        "name": organization.name,
        "plan": organization.plan,
        "mrr": str(organization.mrr),
        "sla_policy": "",
        "github_repository": "",
        "members-TOTAL_FORMS": "0",
        "members-INITIAL_FORMS": "0",
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
    }
    return {**data, **changes}


@pytest.mark.django_db
def test_a_manager_changes_revenue_in_admin_through_the_service(client, manager, org_a):
    from core.models import OutboxItem

    client.force_login(manager)

    response = client.post(
        f"{ORGANIZATIONS}{org_a.pk}/change/", organization_form(org_a, mrr="9900")
    )

    assert response.status_code == 302
    org_a.refresh_from_db()
    assert org_a.mrr == 9900
    # Announced by the service; feedback reweighs the votes after commit.
    assert OutboxItem.objects.filter(
        task="feedback.tasks.reweigh_organization_votes", args=[org_a.pk]
    ).exists()


@pytest.mark.django_db
def test_agents_cannot_change_organizations_in_admin(client, agent, org_a):
    client.force_login(agent)

    response = client.post(f"{ORGANIZATIONS}{org_a.pk}/change/", organization_form(org_a, mrr="1"))

    assert response.status_code == 403
    org_a.refresh_from_db()
    assert org_a.mrr == 2000


@pytest.mark.django_db
def test_an_organization_is_added_with_a_member(client, admin_user, django_user_model):
    # The people inline needs the model permissions: superusers have them.
    person = django_user_model.objects.create_user(username="newbie", password="x")
    client.force_login(admin_user)
    data = {
        **organization_form(Organization(name="Initech", plan="starter", mrr=300)),
        "members-TOTAL_FORMS": "1",
        "members-0-user": str(person.pk),
        "members-0-is_org_admin": "on",
    }

    response = client.post(f"{ORGANIZATIONS}add/", data)

    assert response.status_code == 302
    organization = Organization.objects.get(name="Initech")
    assert (organization.plan, organization.mrr) == ("starter", 300)
    assert person.customer_profile.organization == organization
    assert person.customer_profile.is_org_admin


@pytest.mark.django_db
def test_saved_replies_and_teams_are_saved_through_services(client, agent, admin_user):
    client.force_login(agent)
    client.post(
        "/admin/support/savedreply/add/",
        {"title": "Thanks", "body": "Thank you!", "new_status": "", "is_active": "on"},
    )
    client.force_login(admin_user)  # the members inline needs the model permissions
    response = client.post(
        "/admin/support/team/add/",
        {
            "name": "Billing",
            "handles": "billing,refund",
            "escalation_contact": "",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": str(agent.pk),
            "memberships-0-is_available": "on",
        },
    )

    assert SavedReply.objects.get(title="Thanks").created_by == agent
    assert response.status_code == 302
    team = Team.objects.get(name="Billing")
    assert team.handles == ["billing", "refund"]
    assert list(team.memberships.values_list("user", flat=True)) == [agent.pk]


@pytest.mark.django_db
def test_a_member_leaves_a_team_through_the_service(client, agent, admin_user):
    team = services.team_save(team=Team(name="Billing"), actor=admin_user)
    services.team_members_save(
        team=team, actor=admin_user, memberships=[TeamMembership(user=agent)]
    )
    membership = team.memberships.get()
    client.force_login(admin_user)

    response = client.post(
        f"/admin/support/team/{team.pk}/change/",
        {
            "name": "Billing and refunds",
            "handles": "billing",
            "escalation_contact": "",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": str(membership.pk),
            "memberships-0-team": str(team.pk),
            "memberships-0-user": str(agent.pk),
            "memberships-0-DELETE": "on",
        },
    )

    assert response.status_code == 302
    team.refresh_from_db()
    assert team.name == "Billing and refunds"
    assert not team.memberships.exists()
