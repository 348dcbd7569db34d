"""Nothing is lost when Redis or a worker goes away: the outbox against real servers that a
test stops and kills (the production-mode stack of ``fault_stack``)."""

from __future__ import annotations

import html
import re
import time
from collections import Counter

import httpx
import pytest

from tests.faults.test_degraded import portal_login, portal_ticket_create

pytestmark = [pytest.mark.slow, pytest.mark.faults]

UNFINISHED = ("new", "analyzing", "ai_responding")


@pytest.fixture(scope="module")
def stack(fault_stack):
    fault_stack.wait_ready(60)
    if fault_stack.worker_pid is None:
        fault_stack.worker_start()
    if (
        fault_stack.processes.get("beat") is None
        or fault_stack.processes["beat"].poll() is not None
    ):
        fault_stack.beat_start()
    return fault_stack


@pytest.fixture(scope="module")
def customer(stack):
    return {"Authorization": f"Token {stack.token('outbox-customer')}"}


@pytest.fixture(scope="module")
def agent(stack):
    return {"Authorization": f"Token {stack.token('outbox-agent', staff=True)}"}


def answered_clearly(response: httpx.Response) -> bool:
    """2xx, or 503 with a JSON body: never a 500, never an HTML error on the API."""
    if 200 <= response.status_code < 300:
        return True
    return response.status_code == 503 and response.headers.get("Content-Type", "").startswith(
        "application/json"
    )


def open_ticket(stack, headers, subject: str) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/api/tickets/",
        json={"subject": subject, "description": f"{subject}: it does not work."},
        headers=headers,
        timeout=10,
    )


def unfinished(stack, references: list[str]) -> int:
    """Tickets not yet analysed, plus follow-up work the outbox still owes for them."""
    (tickets,) = stack.sql(
        "SELECT count(*) FROM support_ticket WHERE reference = ANY(%s) AND status = ANY(%s)",
        [references, list(UNFINISHED)],
    )[0]
    (owed,) = stack.sql(
        "SELECT count(*) FROM core_outboxitem WHERE status IN ('pending', 'sent', 'running')"
    )[0]
    return tickets + owed


def wait_all_done(stack, references: list[str], timeout: float = 90) -> float:
    started = time.monotonic()
    while unfinished(stack, references):
        if time.monotonic() - started > timeout:
            rows = stack.sql(
                "SELECT id, task, args, status, attempts, sends, last_error FROM core_outboxitem"
                " WHERE status <> 'done' OR task = 'support.tasks.analyze_ticket' ORDER BY id"
            )
            tickets = stack.sql(
                "SELECT id, reference, status, assignee_id FROM support_ticket"
                " WHERE reference = ANY(%s)",
                [references],
            )
            raise AssertionError(
                f"not done after {timeout}s: {rows}\n{tickets}\n"
                f"--- worker\n{stack.logs('worker')[-4000:]}"
                f"\n--- beat\n{stack.logs('beat')[-1500:]}"
            )
        time.sleep(0.25)
    return time.monotonic() - started


def analysed_once(stack, references: list[str]) -> None:
    """Every ticket was taken up by the AI exactly once, with at most one AI message."""
    starts = dict(
        stack.sql(
            "SELECT t.reference, count(e.id) FROM support_ticket t LEFT JOIN support_ticketevent e"
            " ON e.ticket_id = t.id AND e.kind = 'status_changed' AND e.new_value = 'analyzing'"
            " WHERE t.reference = ANY(%s) GROUP BY t.reference",
            [references],
        )
    )
    assert starts == dict.fromkeys(references, 1)
    ai_messages = dict(
        stack.sql(
            "SELECT t.reference, count(m.id) FROM support_ticket t LEFT JOIN support_message m"
            " ON m.ticket_id = t.id AND m.sender_kind = 'ai' WHERE t.reference = ANY(%s)"
            " GROUP BY t.reference",
            [references],
        )
    )
    assert all(count <= 1 for count in ai_messages.values()), ai_messages
    assert not stack.sql("SELECT id FROM core_outboxitem WHERE status = 'failed'")


def emails_exactly_once(stack) -> None:
    """One email per public agent or AI message and per resolution: none missing, none twice."""
    replies = stack.sql(
        "SELECT t.reference, m.body FROM support_message m JOIN support_ticket t"
        " ON t.id = m.ticket_id WHERE NOT m.is_internal AND m.sender_kind IN ('agent', 'ai')"
    )
    resolutions = stack.sql(
        "SELECT t.reference FROM support_ticketevent e JOIN support_ticket t ON t.id = e.ticket_id"
        " WHERE e.kind = 'resolved'"
    )
    sent_replies, sent_resolutions = Counter(), Counter()
    for mail in stack.mails():
        reference = re.match(r"\[(HD-[\d-]+)\]", mail["subject"]).group(1)
        if " Resolved: " in mail["subject"]:
            sent_resolutions[reference] += 1
        elif " Escalated to " not in mail["subject"]:
            text = html.unescape(mail["body"])
            body = next(b for r, b in replies if r == reference and b in text)
            sent_replies[(reference, body)] += 1
    assert sent_replies == Counter(replies)
    assert sent_resolutions == Counter(reference for (reference,) in resolutions)


def test_valkey_down_while_customers_and_agents_write_loses_nothing(stack, customer, agent):
    before = [open_ticket(stack, customer, f"Before the outage {n}") for n in range(2)]
    assert all(r.status_code == 201 for r in before), [r.text for r in before]
    references = [r.json()["reference"] for r in before]
    wait_all_done(stack, references)
    portal = httpx.Client(base_url=stack.url, timeout=10)

    stack.redis_stop()
    try:
        portal_login(portal, "outbox-customer")  # sign-in limits live in Redis: fail open
        response, _ = portal_ticket_create(portal, "Through the portal during the outage")
        during = [response]
        if response.status_code == 302:
            references.append(re.search(r"/tickets/(HD-[\d-]+)/", response.headers["location"])[1])
        for n in range(5):
            response = open_ticket(stack, customer, f"During the outage {n}")
            during.append(response)
            if response.status_code == 201:
                references.append(response.json()["reference"])
        for reference in references[:2]:
            during.append(
                httpx.post(
                    f"{stack.url}/api/tickets/{reference}/messages/",
                    json={"body": f"An agent answers {reference} while Redis is away."},
                    headers=agent,
                    timeout=10,
                )
            )
        owed = stack.sql(
            "SELECT count(*) FROM core_outboxitem WHERE status IN ('pending', 'sent')"
        )[0][0]
    finally:
        stack.redis_start()
    restarted = time.monotonic()

    assert all(answered_clearly(r) or r.status_code == 302 for r in during), [
        (r.status_code, r.text[:200]) for r in during
    ]
    # PostgreSQL alone was enough: the portal ticket, 5 API tickets, 2 agent replies.
    assert [r.status_code for r in during] == [302] + [201] * 7
    assert owed >= 8  # the analyses and the reply emails waited in the outbox

    wait_all_done(stack, references)
    recovery = time.monotonic() - restarted
    print(f"\nrecovery after Valkey returned: {recovery:.1f} s")
    assert recovery < 60
    analysed_once(stack, references)
    emails_exactly_once(stack)


@pytest.mark.long(50)
def test_a_worker_killed_mid_analysis_loses_nothing_and_answers_once(stack, customer):
    stack.worker_stop()
    stack.worker_start()  # a fresh worker: its first analysis loads the embedding model
    references = []
    for n in range(3):
        response = open_ticket(stack, customer, f"Killed worker {n}")
        assert response.status_code == 201, response.text
        references.append(response.json()["reference"])

    # Killed while an analysis is under way (the first one loads the embedding model).
    deadline = time.monotonic() + 60
    while not stack.sql(
        "SELECT 1 FROM support_ticket WHERE reference = ANY(%s) AND status = 'analyzing'",
        [references],
    ):
        assert time.monotonic() < deadline, stack.logs("worker")[-3000:]
        time.sleep(0.02)
    stack.worker_kill()

    (mid_way,) = stack.sql(
        "SELECT count(*) FROM support_ticket WHERE reference = ANY(%s) AND status = ANY(%s)",
        [references, ["analyzing", "ai_responding"]],
    )[0]
    assert mid_way >= 1  # the kill did land in the middle of an analysis

    stack.worker_start()
    restarted = time.monotonic()
    wait_all_done(stack, references)
    print(f"\nrecovery after the worker came back: {time.monotonic() - restarted:.1f} s")
    assert time.monotonic() - restarted < 60
    analysed_once(stack, references)
    resumed = stack.sql(
        "SELECT count(*) FROM core_outboxitem WHERE task = 'support.tasks.analyze_ticket'"
        " AND attempts > 1"
    )[0][0]
    assert resumed >= 1
