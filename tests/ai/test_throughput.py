"""The AI worker's throughput machinery on the real stack: analyses claimed from the
outbox in batches (never one another worker holds), their questions embedded in one
call, and a batch in which one analysis fails still answering the others."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core import outbox
from core.models import OutboxItem
from integrations.llm.local import LocalProvider
from support import services
from support.ai import pipeline
from support.models import Message, Ticket
from support.tasks import analyze_ticket

S = OutboxItem.Status
TASK = "support.tasks.analyze_ticket"

QUESTIONS = [
    ("Forgot my password", "How do I reset my password? I forgot it."),
    ("Export", "How do I export my tasks to CSV?"),
    ("Invite", "How can I invite teammates to my workspace?"),
]


def open_tickets(customer, questions=QUESTIONS) -> list[Ticket]:
    return [
        services.ticket_open(requester=customer, subject=subject, description=description)
        for subject, description in questions
    ]


# ---- claiming ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_never_take_the_same_analysis():
    items = [outbox.schedule_after_commit(TASK, 1000 + i) for i in range(40)]
    held = items[0]  # a live worker runs this one
    OutboxItem.objects.filter(pk=held.pk).update(
        status=S.RUNNING, attempts=1, lease_until=timezone.now() + timedelta(seconds=30)
    )
    OutboxItem.objects.filter(pk=items[1].pk).update(status=S.DONE)
    start = threading.Barrier(2)
    claimed: list[list[int]] = [[], []]

    def worker(n: int) -> None:
        try:
            start.wait()
            while batch := outbox.claim_due(TASK, limit=3):
                claimed[n].extend(c.item_id for c, _ in batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    first, second = set(claimed[0]), set(claimed[1])
    assert not first & second
    assert len(claimed[0]) + len(claimed[1]) == 38  # each once
    assert first | second == {i.pk for i in items[2:]}
    assert OutboxItem.objects.get(pk=held.pk).attempts == 1  # the live worker's stays its own
    rows = OutboxItem.objects.filter(pk__in=first | second)
    assert {(r.status, r.attempts) for r in rows} == {(S.RUNNING, 1)}
    assert all(r.lease_until > timezone.now() for r in rows)


@pytest.mark.django_db
def test_a_claimed_item_whose_worker_died_is_claimed_again_as_a_takeover():
    item = outbox.schedule_after_commit(TASK, 7)
    # Its worker claimed it and died; the lease ran out and the relay sent it again.
    OutboxItem.objects.filter(pk=item.pk).update(
        status=S.RUNNING, attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )
    outbox.relay()

    [(claim, claimed)] = outbox.claim_due(TASK, limit=5)

    assert (claim.item_id, claim.attempt, claim.resumed) == (item.pk, 2, True)
    assert claimed.args == [7]


# ---- a batch -------------------------------------------------------------------------------


class CountingEmbeddings:
    """The real local model, counting how it is asked."""

    def __init__(self, real):
        self.real, self.documents, self.queries = real, [], 0
        self.model_name, self.dimensions = real.model_name, real.dimensions

    def embed_documents(self, texts):
        self.documents.append(list(texts))
        return self.real.embed_documents(texts)

    def embed_query(self, text):
        self.queries += 1
        return self.real.embed_query(text)


class FailingOn(LocalProvider):
    """The local provider, broken for one question."""

    def __init__(self, word: str):
        super().__init__()
        self.word = word

    def complete(self, *, messages, **kwargs):
        if self.word in str(messages):
            raise RuntimeError("provider crashed")
        return super().complete(messages=messages, **kwargs)


@pytest.fixture
def counting_embeddings(local_provider, monkeypatch):
    from integrations import embeddings
    from support.ai import planner

    planner.warm_up()  # as a worker process does when it starts
    counting = CountingEmbeddings(local_provider)
    monkeypatch.setitem(embeddings._providers, "local", counting)
    return counting


@pytest.mark.django_db
def test_a_batch_embeds_its_questions_in_one_call_and_answers_each(
    kb, customer, counting_embeddings
):
    tickets = open_tickets(customer)
    done = []

    outcomes = pipeline.analyze_tickets(
        [t.pk for t in tickets], provider=LocalProvider(), on_done=lambda *a: done.append(a)
    )

    assert [len(call) for call in counting_embeddings.documents] == [3]
    assert counting_embeddings.queries == 0
    assert [ticket_id for ticket_id, _, _ in done] == [t.pk for t in tickets]
    said = {"resolved": "resolved", "awaiting_customer": "asked", "escalated": "escalated"}
    statuses = {t.pk: status for t, status in zip(tickets, _statuses(tickets), strict=True)}
    assert outcomes == {pk: said[status] for pk, status in statuses.items()}
    assert statuses[tickets[0].pk] == "resolved"
    for ticket in tickets:
        assert ticket.messages.filter(sender_kind=Message.SenderKind.AI).exists()


def _statuses(tickets) -> list[str]:
    return [Ticket.objects.get(pk=t.pk).status for t in tickets]


@pytest.mark.django_db
def test_a_batch_where_one_analysis_fails_answers_the_others_and_escalates_that_one(kb, customer):
    tickets = open_tickets(customer)
    done = []

    outcomes = pipeline.analyze_tickets(
        [t.pk for t in tickets],
        provider=FailingOn("export my tasks"),
        on_done=lambda *a: done.append(a),
    )

    failed = Ticket.objects.get(pk=tickets[1].pk)
    assert outcomes[failed.pk] == "escalated" and failed.status == "escalated"
    escalation = failed.escalations.get()
    assert escalation.kind == "ai_unavailable" and "provider crashed" in escalation.reason
    assert Ticket.objects.get(pk=tickets[0].pk).status == "resolved"
    assert Ticket.objects.get(pk=tickets[2].pk).status in ("resolved", "awaiting_customer")
    assert [(ticket_id, error) for ticket_id, _, error in done] == [(t.pk, None) for t in tickets]


@pytest.mark.django_db
def test_when_the_batch_embedding_fails_each_ticket_embeds_its_own_question(
    kb, customer, counting_embeddings, monkeypatch
):
    def broken(texts):
        raise RuntimeError("out of memory")

    tickets = open_tickets(customer, QUESTIONS[:2])
    monkeypatch.setattr(counting_embeddings, "embed_documents", broken)

    pipeline.analyze_tickets([t.pk for t in tickets], provider=LocalProvider())

    assert counting_embeddings.queries == 2
    assert Ticket.objects.get(pk=tickets[0].pk).status == "resolved"
    assert Ticket.objects.get(pk=tickets[1].pk).messages.filter(sender_kind="ai").exists()


# ---- the task: one message, a batch of due analyses ------------------------------------------


def deliver(ticket_id: int, item_id: int):
    """``analyze_ticket`` as a worker runs a message of the outbox (not eagerly)."""
    analyze_ticket.push_request(headers={"outbox_id": item_id}, is_eager=False)
    try:
        return analyze_ticket(ticket_id)
    finally:
        analyze_ticket.pop_request()


@pytest.mark.django_db
def test_a_worker_answers_the_due_analyses_with_its_own_once_each(kb, customer, settings):
    settings.HELPDESK_AI_BATCH_SIZE = 16
    tickets = open_tickets(customer)
    items = {i.args[0]: i for i in OutboxItem.objects.filter(task=TASK)}

    outcome = deliver(tickets[0].pk, items[tickets[0].pk].pk)

    assert outcome == "resolved"
    for ticket in tickets:
        assert ticket.messages.filter(sender_kind=Message.SenderKind.AI).count() == 1
        item = OutboxItem.objects.get(pk=items[ticket.pk].pk)
        assert (item.status, item.attempts, item.lease_until) == (S.DONE, 1, None)
    # The others' own messages arrive later: done, skipped, nothing answered twice.
    for ticket in tickets[1:]:
        assert deliver(ticket.pk, items[ticket.pk].pk) is None
        assert ticket.messages.filter(sender_kind=Message.SenderKind.AI).count() == 1
