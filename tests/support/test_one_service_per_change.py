"""The services behind the doors' combined actions (issue 17): a reply that resolves,
an API edit of several fields, the AI asked again, the chat handed to a person, and the
desk's own records (organizations, saved replies, teams, SLA policies). Each is one
service in one transaction: it changes everything or nothing."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.utils import DatabaseError
from rest_framework.test import APIClient

from core import events as domain_events
from core.errors import Conflict, DomainError, NotPermitted
from core.models import OutboxItem
from support import events, services
from support.models import Escalation, Organization, SavedReply, SlaPolicy, Team, Ticket

pytestmark = pytest.mark.django_db


def kinds(ticket) -> list[str]:
    return list(ticket.events.values_list("kind", flat=True))


def scheduled(task: str) -> list[list]:
    return [item.args for item in OutboxItem.objects.filter(task=task).order_by("pk")]


# ---- a reply that resolves ------------------------------------------------------------


class TestMessageReply:
    def test_reply_and_resolve_in_one_change(self, ticket, agent):
        message = services.message_reply(
            ticket=ticket, author=agent, body="Fixed it for you", resolve=True
        )

        ticket.refresh_from_db()
        assert ticket.status == "resolved"
        assert (message.body, message.is_internal, message.sender_kind) == (
            "Fixed it for you",
            False,
            "agent",
        )
        assert kinds(ticket) == [
            "created",
            "message_added",
            "status_changed",  # awaiting the customer, as after any reply
            "status_changed",  # then resolved
            "resolved",
        ]

    def test_when_resolving_fails_the_reply_is_not_kept(self, ticket, agent):
        services.ticket_close(ticket=ticket, actor=agent)
        before = (ticket.messages.count(), ticket.events.count())

        with pytest.raises(Conflict):
            services.message_reply(ticket=ticket, author=agent, body="Late answer", resolve=True)

        ticket.refresh_from_db()
        assert ticket.status == "closed"
        assert (ticket.messages.count(), ticket.events.count()) == before

    def test_an_internal_note_does_not_resolve(self, ticket, agent):
        with pytest.raises(DomainError) as refusal:
            services.message_reply(
                ticket=ticket, author=agent, body="note", is_internal=True, resolve=True
            )

        assert refusal.value.field == "resolve"
        assert ticket.messages.count() == 1

    def test_without_resolve_it_is_a_plain_reply(self, ticket, agent):
        services.message_reply(ticket=ticket, author=agent, body="Looking into it")

        ticket.refresh_from_db()
        assert ticket.status == "awaiting_customer"


# ---- the API's edit --------------------------------------------------------------------


class TestTicketEdit:
    def test_priority_subject_and_type_change_together_with_their_events(self, ticket, agent):
        due = ticket.sla_due_at

        edited = services.ticket_edit(
            ticket=ticket, actor=agent, subject="Export hangs", type="bug", priority="urgent"
        )

        assert (edited.subject, edited.type, edited.priority) == ("Export hangs", "bug", "urgent")
        assert edited.sla_due_at < due  # urgent is due sooner
        changes = list(
            ticket.events.exclude(kind="created").values_list("kind", "field", "new_value")
        )
        assert changes == [
            ("priority_changed", "priority", "urgent"),
            ("field_changed", "subject", "Export hangs"),
            ("field_changed", "type", "bug"),
        ]

    def test_a_bad_type_changes_nothing_not_even_the_priority(self, ticket, agent):
        with pytest.raises(DomainError) as refusal:
            services.ticket_edit(ticket=ticket, actor=agent, priority="urgent", type="nonsense")

        assert refusal.value.field == "type"
        ticket.refresh_from_db()
        assert (ticket.priority, ticket.type) == ("normal", "billing")
        assert kinds(ticket) == ["created"]

    def test_a_failure_after_the_priority_changed_rolls_it_back(self, ticket, agent, monkeypatch):
        def broken(**kwargs):
            raise DatabaseError("disk full")

        monkeypatch.setattr(events, "field_changed_event", broken)

        with pytest.raises(DatabaseError):
            services.ticket_edit(ticket=ticket, actor=agent, priority="urgent", subject="New")

        ticket.refresh_from_db()
        assert (ticket.priority, ticket.subject) == ("normal", "Cannot export invoices")
        assert kinds(ticket) == ["created"]

    def test_api_patch_with_a_bad_type_is_400_and_keeps_the_priority(self, ticket, agent):
        client = APIClient()
        client.force_authenticate(agent)

        response = client.patch(
            f"/api/tickets/{ticket.reference}/",
            {"priority": "urgent", "type": "nonsense"},
            format="json",
        )

        assert response.status_code == 400
        assert "type" in response.json()
        ticket.refresh_from_db()
        assert ticket.priority == "normal"
        assert kinds(ticket) == ["created"]


# ---- the AI asked again ----------------------------------------------------------------


class TestRequestAi:
    def test_a_new_unassigned_ticket_is_analyzed_again(self, ticket, agent):
        assert services.ticket_request_ai(ticket=ticket, actor=agent) == services.AI_ANALYSIS

        assert scheduled("support.tasks.analyze_ticket")[-1] == [ticket.pk]
        assert scheduled("support.tasks.draft_answer") == []
        assert kinds(ticket) == ["created"]  # the request itself changes nothing

    def test_a_ticket_people_have_gets_a_draft(self, ticket, agent):
        services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
        analyses = len(scheduled("support.tasks.analyze_ticket"))

        assert services.ticket_request_ai(ticket=ticket, actor=agent) == services.AI_DRAFT

        assert scheduled("support.tasks.draft_answer") == [[ticket.pk]]
        assert len(scheduled("support.tasks.analyze_ticket")) == analyses

    def test_customers_cannot_ask(self, ticket, customer):
        with pytest.raises(NotPermitted):
            services.ticket_request_ai(ticket=ticket, actor=customer)

        assert scheduled("support.tasks.draft_answer") == []


# ---- the chat handed to a person -------------------------------------------------------


@pytest.fixture
def chat(customer):
    return services.ticket_open(
        requester=customer, subject="Reset link", description="It expired.", channel="chat"
    )


class TestChatHandOver:
    def test_the_chat_is_escalated_as_the_customers_request(self, chat, customer):
        escalation = services.chat_hand_over(ticket=chat, actor=customer, reason="")

        chat.refresh_from_db()
        assert chat.status == "escalated"
        assert escalation.kind == Escalation.Kind.CUSTOMER_REQUESTED
        assert escalation.reason == "The customer asked for a person in the chat."
        assert kinds(chat)[-1] == "escalated"

    def test_a_resolved_chat_is_reopened_then_escalated(self, chat, customer, agent):
        services.ticket_resolve(ticket=chat, actor=agent)

        services.chat_hand_over(ticket=chat, actor=customer, reason="That did not help.")

        chat.refresh_from_db()
        assert (chat.status, chat.reopened_count) == ("escalated", 1)
        assert chat.escalations.get().reason == "That did not help."
        assert kinds(chat).index("reopened") < kinds(chat).index("escalated")

    def test_only_once(self, chat, customer):
        services.chat_hand_over(ticket=chat, actor=customer)

        with pytest.raises(DomainError) as refusal:
            services.chat_hand_over(ticket=chat, actor=customer)

        assert refusal.value.code == "already_escalated"
        assert chat.escalations.count() == 1

    def test_a_closed_chat_is_refused_and_stays_closed(self, chat, customer, agent):
        services.ticket_close(ticket=chat, actor=agent)
        before = chat.events.count()

        with pytest.raises(Conflict):
            services.chat_hand_over(ticket=chat, actor=customer)

        chat.refresh_from_db()
        assert chat.status == "closed" and chat.events.count() == before

    def test_only_the_customer_of_the_chat(self, chat, colleague):
        with pytest.raises(NotPermitted):
            services.chat_hand_over(ticket=chat, actor=colleague)

        assert not chat.escalations.exists()


# ---- organizations ---------------------------------------------------------------------


@pytest.fixture
def announced(monkeypatch):
    """The domain events announced, instead of their handlers."""
    calls = []
    monkeypatch.setattr(domain_events, "announce", lambda name, **kw: calls.append((name, kw)))
    return calls


class TestOrganizations:
    def test_a_manager_changes_revenue_and_it_is_announced(self, org_a, manager, announced):
        organization = services.organization_update(
            organization=org_a, actor=manager, mrr=9_900, plan="business"
        )

        org_a.refresh_from_db()
        assert (org_a.mrr, org_a.plan) == (Decimal("9900"), "business")
        assert organization.mrr == Decimal("9900")
        assert announced == [("organization_revenue_changed", {"organization_id": org_a.pk})]

    def test_an_agent_who_is_not_a_manager_cannot_change_revenue(self, org_a, agent, announced):
        with pytest.raises(NotPermitted):
            services.organization_update(organization=org_a, actor=agent, mrr=1, name="Acme 2")

        org_a.refresh_from_db()
        assert (org_a.mrr, org_a.name) == (Decimal("2000"), "Acme")
        assert announced == []

    def test_other_fields_need_no_manager_and_announce_nothing(self, org_a, agent, announced):
        services.organization_update(organization=org_a, actor=agent, name="Acme Corp", mrr=2000)

        org_a.refresh_from_db()
        assert org_a.name == "Acme Corp"
        assert announced == []  # the same revenue is no change

    def test_values_are_validated(self, org_a, manager, org_b):
        with pytest.raises(DomainError) as negative:
            services.organization_update(organization=org_a, actor=manager, mrr=-5)
        with pytest.raises(DomainError) as taken:
            services.organization_update(organization=org_a, actor=manager, name=org_b.name)
        with pytest.raises(DomainError):
            services.organization_update(organization=org_a, actor=manager, created_at=None)

        assert (negative.value.field, taken.value.field) == ("mrr", "name")

    def test_customers_change_nothing(self, org_a, org_admin):
        with pytest.raises(NotPermitted):
            services.organization_update(organization=org_a, actor=org_admin, name="Mine")

    def test_create_with_revenue_needs_a_manager(self, manager, agent, announced):
        with pytest.raises(NotPermitted):
            services.organization_create(actor=agent, name="Initech", mrr=500)

        created = services.organization_create(actor=manager, name="Initech", mrr=500)

        assert Organization.objects.get(name="Initech").mrr == Decimal("500") == created.mrr
        assert announced == []  # a new organization has no votes to reweigh


# ---- the desk's setup ------------------------------------------------------------------


class TestDesk:
    def test_a_new_saved_reply_records_its_author(self, agent):
        reply = services.saved_reply_save(
            saved_reply=SavedReply(title="Thanks", body="Thank you!"), actor=agent
        )

        assert SavedReply.objects.get(pk=reply.pk).created_by == agent

    def test_saved_replies_are_validated_and_staff_only(self, agent, customer):
        with pytest.raises(DomainError) as refusal:
            services.saved_reply_save(saved_reply=SavedReply(title="Empty"), actor=agent)
        with pytest.raises(NotPermitted):
            services.saved_reply_save(saved_reply=SavedReply(title="T", body="B"), actor=customer)

        assert refusal.value.field == "body"
        assert not SavedReply.objects.exists()

    def test_teams_and_sla_policies_are_the_managers(self, manager, agent):
        with pytest.raises(NotPermitted):
            services.team_save(team=Team(name="Billing"), actor=agent)
        with pytest.raises(NotPermitted):
            services.sla_policy_save(policy=SlaPolicy(name="Gold"), actor=agent)

        team = services.team_save(team=Team(name="Billing", handles=["billing"]), actor=manager)
        policy = services.sla_policy_save(policy=SlaPolicy(name="Gold"), actor=manager)

        assert Team.objects.get(pk=team.pk).handles == ["billing"]
        assert SlaPolicy.objects.get(pk=policy.pk).urgent_hours == 4


# ---- the stuck-analysis sweep ----------------------------------------------------------


def test_giving_up_on_an_analysis_escalates_unless_people_moved_on(ticket, agent):
    services.ticket_set_status(ticket=ticket, status="analyzing")

    assert services.ticket_analysis_give_up(ticket_id=ticket.pk, reason="timeout") == "escalated"
    assert services.ticket_analysis_give_up(ticket_id=ticket.pk, reason="again") == "superseded"

    escalation = Ticket.objects.get(pk=ticket.pk).escalations.get()
    assert (escalation.kind, escalation.reason) == ("ai_unavailable", "timeout")


def test_api_token_is_made_once(customer):
    first = services.api_token_issue(user=customer)

    assert services.api_token_issue(user=customer) == first
    assert get_user_model().objects.get(pk=customer.pk).auth_token.key == first
