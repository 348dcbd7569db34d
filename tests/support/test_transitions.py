"""Every status change, allowed or refused, against the one transition table."""

import itertools

import pytest

from core.errors import Conflict
from support import services
from support.models import ALLOWED_TRANSITIONS, Ticket, TicketEvent, TicketStatus

STATUSES = list(TicketStatus.values)


def _put(ticket, status):
    Ticket.objects.filter(pk=ticket.pk).update(status=status)  # test setup only
    ticket.refresh_from_db()
    return ticket


@pytest.mark.django_db
@pytest.mark.parametrize(("old", "new"), list(itertools.product(STATUSES, STATUSES)))
def test_each_status_change_is_allowed_or_refused_by_the_table(ticket, agent, old, new):
    _put(ticket, old)
    events_before = TicketEvent.objects.filter(ticket=ticket).count()

    if old == new:
        services.ticket_set_status(ticket=ticket, status=new, actor=agent)
        expected_events = 0
    elif new in ALLOWED_TRANSITIONS[old]:
        services.ticket_set_status(ticket=ticket, status=new, actor=agent)
        expected_events = 1
    else:
        with pytest.raises(Conflict, match="cannot become"):
            services.ticket_set_status(ticket=ticket, status=new, actor=agent)
        expected_events = 0

    ticket.refresh_from_db()
    assert ticket.status == (new if expected_events or old == new else old)
    added = TicketEvent.objects.filter(ticket=ticket).order_by("id")[events_before:]
    assert len(added) == expected_events
    if expected_events:
        event = added[0]
        assert (event.kind, event.field, event.old_value, event.new_value, event.actor) == (
            "status_changed",
            "status",
            old,
            new,
            agent,
        )


@pytest.mark.django_db
@pytest.mark.parametrize("status", STATUSES)
def test_resolve_from_every_status(ticket, agent, status):
    _put(ticket, status)
    if "resolved" in ALLOWED_TRANSITIONS[status]:
        services.ticket_resolve(ticket=ticket, actor=agent)
        ticket.refresh_from_db()
        assert ticket.status == "resolved" and ticket.resolved_at is not None
        assert ticket.events.filter(kind="resolved").count() == 1
    else:
        with pytest.raises(Conflict):
            services.ticket_resolve(ticket=ticket, actor=agent)
        ticket.refresh_from_db()
        assert ticket.status == status and ticket.resolved_at is None
        assert not ticket.events.filter(kind="resolved").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", STATUSES)
def test_close_from_every_status(ticket, agent, status):
    _put(ticket, status)
    if "closed" in ALLOWED_TRANSITIONS[status]:
        services.ticket_close(ticket=ticket, actor=agent)
        ticket.refresh_from_db()
        assert ticket.status == "closed" and ticket.closed_at is not None
    else:
        with pytest.raises(Conflict):
            services.ticket_close(ticket=ticket, actor=agent)
        ticket.refresh_from_db()
        assert ticket.status == status and ticket.closed_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("status", STATUSES)
def test_reopen_only_from_resolved_or_closed(ticket, agent, status):
    _put(ticket, status)
    if status in ("resolved", "closed"):
        services.ticket_reopen(ticket=ticket, actor=agent)
        ticket.refresh_from_db()
        assert ticket.status == "new"
        assert ticket.reopened_count == 1
        assert ticket.events.filter(kind="reopened").count() == 1
    else:
        with pytest.raises(Conflict, match="Only a resolved or closed ticket"):
            services.ticket_reopen(ticket=ticket, actor=agent)
        ticket.refresh_from_db()
        assert ticket.status == status and ticket.reopened_count == 0


@pytest.mark.django_db
@pytest.mark.parametrize("status", STATUSES)
def test_escalate_from_every_status(ticket, agent, status):
    _put(ticket, status)
    if status in ("resolved", "closed"):
        with pytest.raises(Conflict, match="Reopen the ticket"):
            services.ticket_escalate(ticket=ticket, kind="complex", reason="x", actor=agent)
        assert not ticket.escalations.exists()
    else:
        services.ticket_escalate(ticket=ticket, kind="complex", reason="needs a look", actor=agent)
        ticket.refresh_from_db()
        assert ticket.status == "escalated"
        assert ticket.escalations.count() == 1
        assert ticket.events.filter(kind="escalated").count() == 1


@pytest.mark.django_db
def test_reopened_ticket_with_an_assignee_goes_back_to_people(ticket, agent):
    services.ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    services.ticket_resolve(ticket=ticket, actor=agent)

    services.ticket_reopen(ticket=ticket, actor=agent)

    ticket.refresh_from_db()
    assert ticket.status == "escalated"
    assert ticket.resolved_at is None
