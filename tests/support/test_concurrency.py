"""Races between people and workers: separate connections in threads, real PostgreSQL."""

import threading

import pytest
from django.db import close_old_connections, connection

from support import services
from support.models import Ticket
from tests.factories import CustomerFactory


def _in_threads(n, target):
    errors, barrier = [], threading.Barrier(n)

    def run(i):
        try:
            barrier.wait()
            target(i)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_openings_get_distinct_consecutive_references():
    customer = CustomerFactory(username="racer")

    errors = _in_threads(
        12, lambda i: services.ticket_open(requester=customer, subject=f"T{i}", description="d")
    )

    assert errors == []
    numbers = sorted(int(ref[-4:]) for ref in Ticket.objects.values_list("reference", flat=True))
    assert numbers == list(range(1, 13))


@pytest.mark.django_db(transaction=True)
def test_concurrent_resolve_and_reply_serialise_on_the_row_lock():
    customer = CustomerFactory(username="racer")
    from tests.factories import AgentFactory

    agent = AgentFactory(username="racer-agent")
    ticket = services.ticket_open(requester=customer, subject="s", description="d")

    def act(i):
        if i % 2:
            services.ticket_resolve(ticket=ticket, actor=agent)
        else:
            services.message_add(ticket=ticket, author=agent, body=f"reply {i}")

    errors = _in_threads(6, act)

    # Exactly one resolve wins; the others are refused because it is already resolved.
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    assert ticket.events.filter(kind="resolved").count() == 1
    assert len(errors) == 2 and all("already resolved" in str(e) for e in errors)
