import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.db.utils import DatabaseError

from core.errors import Conflict, DomainError, NotPermitted
from support import services
from support.models import Message, SlaPolicy, TeamMembership, Ticket, TicketEvent
from tests.factories import AgentFactory, SavedReplyFactory, TeamFactory


@pytest.mark.django_db
class TestOpen:
    def test_opening_reads_policy_and_target_together_and_answers_what_rules_did(
        self, customer, django_assert_max_num_queries
    ):
        services.ticket_open(requester=customer, subject="First", description="Loads the rules.")
        # Profile, number, SLA policy with its target, ticket, message, event, the rules'
        # version, the analysis owed (and the savepoint around them): the rules read the
        # ticket just written, and it is read back only when a rule changed it.
        with django_assert_max_num_queries(10):
            quiet = services.ticket_open(
                requester=customer, subject="Export", description="Where is the export?"
            )
        escalated = services.ticket_open(
            requester=customer, subject="Refund", description="Please refund me."
        )

        assert quiet.status == "new"
        # The default always-escalate rule fired inside the open: the answer says so.
        assert escalated.status == Ticket.objects.get(pk=escalated.pk).status == "escalated"
        assert escalated.requester == customer

    def test_opening_records_everything_a_ticket_needs(self, customer, org_a):
        ticket = services.ticket_open(
            requester=customer,
            subject="  Login loop  ",
            description="It keeps asking me to sign in.",
            type="account",
            priority="high",
        )

        assert re.fullmatch(r"HD-\d{8}-\d{4}", ticket.reference)
        assert ticket.subject == "Login loop"
        assert (ticket.status, ticket.type, ticket.priority, ticket.channel) == (
            "new",
            "account",
            "high",
            "web",
        )
        assert ticket.organization == org_a
        # The description is the first message of the conversation.
        first = ticket.messages.get()
        assert (first.sender_kind, first.author, first.body) == (
            "customer",
            customer,
            "It keeps asking me to sign in.",
        )
        event = ticket.events.get()
        assert (event.kind, event.actor, event.actor_kind, event.new_value) == (
            "created",
            customer,
            "customer",
            ticket.reference,
        )

    def test_sla_due_time_follows_the_organizations_policy_and_priority(self, customer, org_a):
        org_a.sla_policy = SlaPolicy.objects.create(name="Gold", urgent_hours=1, high_hours=2)
        org_a.save()

        ticket = services.ticket_open(
            requester=customer, subject="Down", description="All down", priority="urgent"
        )

        assert ticket.sla_due_at - ticket.created_at == pytest.approx(
            timedelta(hours=1), abs=timedelta(seconds=2)
        )

    def test_without_a_policy_the_default_policy_applies(self, other_customer):
        ticket = services.ticket_open(
            requester=other_customer, subject="Q", description="?", priority="low"
        )

        hours = SlaPolicy.objects.get(is_default=True).low_hours
        assert ticket.sla_due_at - ticket.created_at == pytest.approx(
            timedelta(hours=hours), abs=timedelta(seconds=2)
        )

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"subject": " "}, "subject"),
            ({"description": ""}, "description"),
            ({"type": "weird"}, "type"),
            ({"priority": "asap"}, "priority"),
            ({"channel": "fax"}, "channel"),
        ],
    )
    def test_bad_input_is_refused_and_nothing_is_written(self, customer, kwargs, field):
        values = {"subject": "S", "description": "D", **kwargs}
        with pytest.raises(DomainError) as error:
            services.ticket_open(requester=customer, **values)

        assert error.value.field == field
        assert not Ticket.objects.exists()

    def test_references_are_numbered_per_day(self, customer):
        first = services.ticket_open(requester=customer, subject="A", description="a")
        second = services.ticket_open(requester=customer, subject="B", description="b")

        assert first.reference[:12] == second.reference[:12]
        assert int(second.reference[-4:]) == int(first.reference[-4:]) + 1


@pytest.mark.django_db
class TestConversation:
    def test_agent_reply_is_the_first_response_and_waits_for_the_customer(self, ticket, agent):
        message = services.message_add(ticket=ticket, author=agent, body="Try clearing cache.")

        ticket.refresh_from_db()
        assert message.sender_kind == "agent"
        assert ticket.status == "awaiting_customer"
        first_response = ticket.first_response_at
        assert first_response is not None

        services.message_add(ticket=ticket, author=agent, body="Any news?")
        ticket.refresh_from_db()
        assert ticket.first_response_at == first_response  # recorded once

    def test_ai_reply_counts_as_first_response_with_its_metadata(self, ticket):
        ai = services.AiMetadata(
            model="local-extractive",
            confidence=0.9,
            input_tokens=10,
            output_tokens=20,
            latency_ms=5,
            article_ids=(3, 4),
        )
        message = services.message_add(
            ticket=ticket, author=None, body="Here is how.", sender_kind="ai", ai=ai
        )

        ticket.refresh_from_db()
        assert ticket.first_response_at == message.created_at
        assert (message.ai_model, message.ai_confidence, message.article_ids) == (
            "local-extractive",
            0.9,
            [3, 4],
        )

    def test_internal_note_is_not_a_response_and_changes_no_status(self, ticket, agent):
        services.message_add(
            ticket=ticket, author=agent, body="Looks like bug #12", is_internal=True
        )

        ticket.refresh_from_db()
        assert ticket.first_response_at is None
        assert ticket.status == "new"
        event = ticket.events.get(kind="message_added")
        assert event.is_internal is True

    def test_customers_cannot_write_internal_notes(self, ticket, customer):
        with pytest.raises(NotPermitted):
            services.message_add(ticket=ticket, author=customer, body="x", is_internal=True)
        assert ticket.messages.count() == 1

    def test_customer_reply_on_a_resolved_ticket_reopens_it(self, ticket, agent, customer):
        services.ticket_resolve(ticket=ticket, actor=agent)

        services.message_add(ticket=ticket, author=customer, body="Still broken.")

        ticket.refresh_from_db()
        assert ticket.status == "new"
        assert ticket.resolved_at is None
        assert ticket.reopened_count == 1
        reopened = ticket.events.get(kind="reopened")
        assert reopened.metadata == {"reason": "customer replied"}
        assert reopened.actor == customer

    def test_customer_reply_goes_back_to_the_assigned_agent(self, ticket, agent, customer):
        services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
        services.message_add(ticket=ticket, author=agent, body="Which browser?")

        services.message_add(ticket=ticket, author=customer, body="Firefox")

        ticket.refresh_from_db()
        assert ticket.status == "escalated"

    def test_closed_ticket_takes_no_customer_reply(self, ticket, agent, customer):
        services.ticket_close(ticket=ticket, actor=agent)

        with pytest.raises(Conflict, match="open a new ticket"):
            services.message_add(ticket=ticket, author=customer, body="Hello?")
        assert ticket.messages.count() == 1

    def test_empty_message_is_refused(self, ticket, customer):
        with pytest.raises(DomainError) as error:
            services.message_add(ticket=ticket, author=customer, body="   ")
        assert error.value.field == "body"


@pytest.mark.django_db
class TestAttachments:
    def test_files_are_stored_with_size_and_type(self, customer):
        upload = SimpleUploadedFile("screen.png", b"\x89PNG fake", content_type="image/png")

        ticket = services.ticket_open(
            requester=customer, subject="S", description="D", attachments=[upload]
        )

        attachment = ticket.messages.get().attachments.get()
        assert (attachment.filename, attachment.content_type, attachment.size) == (
            "screen.png",
            "image/png",
            9,
        )
        assert attachment.file.read() == b"\x89PNG fake"

    def test_too_large_a_file_is_refused(self, customer, settings):
        settings.HELPDESK_ATTACHMENT_MAX_BYTES = 1024
        upload = SimpleUploadedFile("log.txt", b"x" * 2048, content_type="text/plain")

        with pytest.raises(DomainError, match="the limit is 1 KB") as error:
            services.ticket_open(
                requester=customer, subject="S", description="D", attachments=[upload]
            )
        assert error.value.field == "attachments"
        assert not Ticket.objects.exists()

    def test_executables_are_refused_whatever_the_browser_says(self, customer):
        upload = SimpleUploadedFile("invoice.exe", b"MZ", content_type="image/png")

        with pytest.raises(DomainError, match="not accepted"):
            services.ticket_open(
                requester=customer, subject="S", description="D", attachments=[upload]
            )

    def test_too_many_files_are_refused(self, customer, settings):
        settings.HELPDESK_ATTACHMENT_MAX_FILES = 1
        files = [SimpleUploadedFile(f"{i}.txt", b"x") for i in range(2)]

        with pytest.raises(DomainError, match="at most 1"):
            services.ticket_open(
                requester=customer, subject="S", description="D", attachments=files
            )


@pytest.mark.django_db
class TestAssignAndPriority:
    def test_assign_writes_old_and_new_assignee(self, ticket, agent):
        other = AgentFactory(username="agent-b")
        services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
        services.ticket_assign(ticket=ticket, assignee=other, actor=agent)

        events = list(ticket.events.filter(kind="assigned").order_by("id"))
        assert [(e.old_value, e.new_value) for e in events] == [
            ("", "agent-a"),
            ("agent-a", "agent-b"),
        ]
        assert events[0].description == "assignee changed from — to agent-a"

    def test_assigning_the_same_person_again_writes_nothing(self, ticket, agent):
        services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
        services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)

        assert ticket.events.filter(kind="assigned").count() == 1

    def test_only_staff_can_be_assigned(self, ticket, agent, customer):
        with pytest.raises(DomainError, match="active staff"):
            services.ticket_assign(ticket=ticket, assignee=customer, actor=agent)

    def test_priority_change_moves_the_sla_due_time(self, ticket, agent):
        before = ticket.sla_due_at

        services.ticket_change_priority(ticket=ticket, priority="urgent", actor=agent)

        ticket.refresh_from_db()
        assert ticket.priority == "urgent"
        assert ticket.sla_due_at < before
        event = ticket.events.get(kind="priority_changed")
        assert (event.old_value, event.new_value) == ("normal", "urgent")

    def test_update_subject_and_type_are_recorded(self, ticket, agent):
        services.ticket_update(
            ticket=ticket, actor=agent, subject="Invoice export hangs", type="bug"
        )

        changes = {
            (e.field, e.old_value, e.new_value) for e in ticket.events.filter(kind="field_changed")
        }
        assert changes == {
            ("subject", "Cannot export invoices", "Invoice export hangs"),
            ("type", "billing", "bug"),
        }


@pytest.mark.django_db
class TestEscalation:
    def test_routes_to_the_team_for_the_ticket_type(self, ticket, agent):
        billing = TeamFactory(name="Billing", handles=["billing"])

        escalation = services.ticket_escalate(
            ticket=ticket,
            kind="policy",
            reason="Refund requested",
            actor=None,
            actor_kind="ai",
            ai_attempt="Quoted refund policy",
        )

        ticket.refresh_from_db()
        assert escalation.team == billing
        assert ticket.team == billing and ticket.status == "escalated"
        event = ticket.events.get(kind="escalated")
        assert event.actor_kind == "ai"
        assert event.metadata["kind"] == "policy"
        assert escalation.ai_attempt == "Quoted refund policy"

    def test_a_topic_routes_before_the_type(self, ticket):
        security = TeamFactory(name="Security", handles=["security"])
        TeamFactory(name="Billing", handles=["billing"])

        escalation = services.ticket_escalate(
            ticket=ticket, kind="policy", topic="security", reason="Account takeover suspected"
        )

        assert escalation.team == security

    def test_unhandled_types_go_to_the_general_queue(self, ticket):
        escalation = services.ticket_escalate(ticket=ticket, kind="complex", reason="Odd")

        assert escalation.team.is_default

    def test_round_robin_gives_each_escalation_to_the_least_recently_assigned(self, customer):
        team = TeamFactory(name="Billing", handles=["billing"], round_robin=True)
        ann, bob, cy = (AgentFactory(username=n) for n in ("ann", "bob", "cy"))
        for user in (ann, bob, cy):
            TeamMembership.objects.create(team=team, user=user)
        TeamMembership.objects.filter(user=cy).update(is_available=False)

        assignees = []
        for i in range(3):
            t = services.ticket_open(
                requester=customer, subject=f"T{i}", description="d", type="billing"
            )
            assignees.append(
                services.ticket_escalate(ticket=t, kind="complex", reason="r").assignee
            )

        assert assignees == [ann, bob, ann]
        t.refresh_from_db()
        assert t.assignee == ann
        assert t.events.filter(kind="assigned", new_value="ann").exists()

    def test_reason_is_required(self, ticket):
        with pytest.raises(DomainError) as error:
            services.ticket_escalate(ticket=ticket, kind="complex", reason=" ")
        assert error.value.field == "reason"


@pytest.mark.django_db
class TestResolveAndRate:
    def test_resolve_settles_open_escalations(self, ticket, agent):
        services.ticket_escalate(ticket=ticket, kind="complex", reason="r")

        services.ticket_resolve(ticket=ticket, actor=agent)

        escalation = ticket.escalations.get()
        assert escalation.is_resolved and escalation.resolved_at is not None

    def test_the_requester_rates_a_resolved_ticket_once(self, ticket, agent, customer):
        services.ticket_resolve(ticket=ticket, actor=agent)

        services.ticket_rate(ticket=ticket, actor=customer, rating=5, comment="Quick!")

        ticket.refresh_from_db()
        assert (ticket.satisfaction_rating, ticket.satisfaction_comment) == (5, "Quick!")
        assert ticket.events.get(kind="rated").new_value == "5"
        with pytest.raises(Conflict, match="already rated"):
            services.ticket_rate(ticket=ticket, actor=customer, rating=1)

    def test_an_open_ticket_cannot_be_rated(self, ticket, customer):
        with pytest.raises(Conflict, match="once it is resolved"):
            services.ticket_rate(ticket=ticket, actor=customer, rating=4)

    def test_only_the_requester_rates(self, ticket, agent, colleague):
        services.ticket_resolve(ticket=ticket, actor=agent)
        with pytest.raises(NotPermitted):
            services.ticket_rate(ticket=ticket, actor=colleague, rating=4)

    @pytest.mark.parametrize("rating", [0, 6, "five", None])
    def test_rating_must_be_1_to_5(self, ticket, agent, customer, rating):
        services.ticket_resolve(ticket=ticket, actor=agent)
        with pytest.raises(DomainError) as error:
            services.ticket_rate(ticket=ticket, actor=customer, rating=rating)
        assert error.value.field == "rating"

    def test_reopening_clears_the_rating_for_the_next_outcome(self, ticket, agent, customer):
        services.ticket_resolve(ticket=ticket, actor=agent)
        services.ticket_rate(ticket=ticket, actor=customer, rating=2)

        services.message_add(ticket=ticket, author=customer, body="Not fixed")

        ticket.refresh_from_db()
        assert ticket.satisfaction_rating is None
        assert ticket.events.filter(kind="rated").count() == 1  # history keeps it


@pytest.mark.django_db
class TestSavedReplies:
    def test_placeholders_are_filled_and_unknown_ones_kept(self, ticket, agent):
        reply = SavedReplyFactory(
            body="Hi {{ customer.first_name }}, re {{ticket.reference}}. {{ customer.password }}"
        )

        text = services.saved_reply_render(reply, ticket=ticket, agent=agent)

        assert text == f"Hi Casey, re {ticket.reference}. {{{{ customer.password }}}}"

    def test_applying_sends_the_reply_and_changes_status(self, ticket, agent):
        reply = SavedReplyFactory(
            body="Fixed for {{ customer.first_name }}.", new_status="resolved"
        )

        message = services.saved_reply_apply(ticket=ticket, saved_reply=reply, agent=agent)

        ticket.refresh_from_db()
        assert message.body == "Fixed for Casey."
        assert ticket.status == "resolved"


@pytest.mark.django_db
class TestEventLog:
    def test_events_cannot_be_updated(self, ticket):
        event = ticket.events.get()

        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            TicketEvent.objects.filter(pk=event.pk).update(new_value="forged")

        event.refresh_from_db()
        assert event.new_value == ticket.reference

    def test_a_failed_action_leaves_no_event_behind(self, ticket, agent):
        count = ticket.events.count()
        with pytest.raises(Conflict):
            services.ticket_reopen(ticket=ticket, actor=agent)
        assert ticket.events.count() == count


@pytest.mark.django_db
def test_customer_messages_cannot_be_internal_even_in_the_database(ticket, customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            ticket=ticket, sender_kind="customer", author=customer, body="x", is_internal=True
        )
