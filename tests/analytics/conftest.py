"""A desk's history with known figures, written through the services at chosen instants.

The clock (``django.utils.timezone.now``) is set for each step, so every row gets the
time it would have had; the rollups then read those rows like any other day's.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from core.clock import set_clock
from knowledge.models import Article, Category, SearchLog
from support import services
from support.services import AiMetadata
from tests.factories import AgentFactory, CustomerFactory

TZ = "America/New_York"
DAY = dt.date(2026, 6, 10)  # a Wednesday, EDT (UTC-4)


def local(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ZoneInfo(TZ))


def next_day(days: int = 1) -> dt.date:
    return DAY + dt.timedelta(days=days)


def clock(instant: dt.datetime):
    """``timezone.now()`` answers ``instant`` inside the block (as the demo history does)."""
    return set_clock(instant)


def ai(model: str, decision: str, confidence: float, tokens=(100, 50), cost="0.01", articles=()):
    return AiMetadata(
        model=model,
        confidence=confidence,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_usd=Decimal(cost),
        latency_ms=1000,
        article_ids=tuple(articles),
        decision=decision,
    )


def open_ticket(who, when, **fields):
    with clock(when):
        return services.ticket_open(requester=who, subject="Help", description="Hi.", **fields)


def ai_says(ticket, when, meta, *, body="Here is how.", internal=False):
    with clock(when):
        return services.message_add(
            ticket=ticket, author=None, sender_kind="ai", body=body, is_internal=internal, ai=meta
        )


@pytest.fixture
def analytics_tz(settings):
    settings.ANALYTICS_TIME_ZONE = TZ
    return TZ


@pytest.fixture
def article(db):
    category = Category.objects.create(name="Billing", slug="billing")
    return Article.objects.create(
        title="Refunds",
        slug="refunds",
        body="How refunds work.",
        status="published",
        category=category,
    )


@pytest.fixture
def history(analytics_tz, article):
    """Six tickets around DAY (New York time), with what the rollups must find on DAY:

    T1 opened 09:00, resolved by model A at 09:01 (0.92, cites the article), rated 5.
    T2 opened 23:30 (03:30 UTC the next day), resolved by model A at 23:40 (0.85), reopened
       two days later by the customer's reply: not a successful resolution.
    T3 opened the day before at 23:59:59, urgent; model B escalates it at 00:10 (0.30),
       the agent replies at 01:10 and resolves at 02:10; rated 2 at 03:00.
    T4 opened 12:00; model B asks a question at 12:05 (0.60): still open at midnight.
    T5 opened at midnight exactly, the next day: not DAY's.
    T6 opened the day before at 20:00, high priority (due 04:00 on DAY), never answered.
    """
    alice = CustomerFactory(username="alice")
    bob = CustomerFactory(username="bob")
    agent = AgentFactory(username="agent-day")
    A, B = "claude-test", "gpt-test"
    yesterday = DAY - dt.timedelta(days=1)

    t1 = open_ticket(alice, local(DAY, 9))
    ai_says(t1, local(DAY, 9, 1), ai(A, "resolve", 0.92, articles=[article.pk]))
    with clock(local(DAY, 9, 1)):
        services.ticket_resolve(ticket=t1, actor=None, actor_kind="ai")
    with clock(local(DAY, 10)):
        services.ticket_rate(ticket=t1, actor=alice, rating=5)

    t2 = open_ticket(bob, local(DAY, 23, 30))
    ai_says(t2, local(DAY, 23, 40), ai(A, "resolve", 0.85, tokens=(200, 80), cost="0.02"))
    with clock(local(DAY, 23, 40)):
        services.ticket_resolve(ticket=t2, actor=None, actor_kind="ai")
    with clock(local(next_day(2), 10)):
        services.message_add(ticket=t2, author=bob, body="Still broken.")

    t3 = open_ticket(bob, local(yesterday, 23, 59, 59), priority="urgent")
    ai_says(
        t3,
        local(DAY, 0, 10),
        ai(B, "escalate", 0.30, tokens=(300, 20), cost="0.03"),
        body="AI attempt",
        internal=True,
    )
    with clock(local(DAY, 0, 10)):
        services.ticket_escalate(ticket=t3, kind="complex", reason="Unsure", actor_kind="ai")
    with clock(local(DAY, 1, 10)):
        services.message_add(ticket=t3, author=agent, body="Looking into it.")
    with clock(local(DAY, 2, 10)):
        services.ticket_resolve(ticket=t3, actor=agent)
    with clock(local(DAY, 3)):
        services.ticket_rate(ticket=t3, actor=bob, rating=2)

    t4 = open_ticket(alice, local(DAY, 12))
    ai_says(t4, local(DAY, 12, 5), ai(B, "ask", 0.60, tokens=(100, 10), cost="0.005"))

    t5 = open_ticket(alice, local(next_day(), 0))
    t6 = open_ticket(bob, local(yesterday, 20), priority="high")

    # Searches on DAY: alice's is followed by her ticket T4 within 24 h, carol's by none.
    carol = CustomerFactory(username="carol")
    for who, when, query, similarity in [
        (alice, local(DAY, 11), "refund policy", 0.8),
        (carol, local(DAY, 13), "Webhooks retries ", 0.1),
        (None, local(DAY, 14), "webhooks retries", None),
    ]:
        with clock(when):
            SearchLog.objects.create(
                query=query,
                source="help_center",
                result_count=0 if similarity is None else 3,
                best_similarity=similarity,
                user=who,
            )
    return {
        "tickets": [t1, t2, t3, t4, t5, t6],
        "agent": agent,
        "models": (A, B),
        "article": article,
    }
