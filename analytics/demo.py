"""Demo history: six weeks of past tickets so the dashboards have something to show.

The history is written with plain SQL inserts (the services stamp rows with the current
time; these rows need past times), shaped like what the services write: a customer
message, the AI's analysis with model, confidence, tokens and cost, an agent's reply when
escalated, the status events, ratings. Then every day is rolled up. Deterministic (fixed
seed) and idempotent: nothing is added when a history is already there.
"""

from __future__ import annotations

import datetime as dt
import json
import random

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from analytics import services
from integrations.llm import cost_usd
from knowledge.models import Article
from knowledge.services import metric_increment
from support.models import Ticket

SUBJECTS = [
    ("Cannot reset my password", "account"),
    ("Invoice shows the wrong VAT number", "billing"),
    ("Export to CSV times out", "bug"),
    ("How do I add a teammate?", "general"),
    ("Charged twice this month", "billing"),
    ("Dark mode for the dashboard?", "feature"),
    ("API returns 429 too often", "general"),
    ("Cancel my subscription", "cancellation"),
    ("Webhook retries are not documented", "general"),
    ("SSO login loops back to the start page", "bug"),
]
MODELS = [("claude-sonnet-4-5", 0.6), ("gpt-4.1-mini", 0.4)]
SEARCHES = ["reset password", "refund", "export csv", "webhook retries", "sso", "vat number"]
PREFIX = "HD-H"  # references of history tickets: HD-HYYYYMMDD-NNNN, apart from real ones


def load_history(*, days: int = 42, seed: int = 7, today: dt.date | None = None) -> int:
    """Write ``days`` days of history before today and roll them up; returns tickets."""
    if Ticket.objects.filter(reference__startswith=PREFIX).exists():
        return 0
    User = get_user_model()
    customers = list(User.objects.filter(is_staff=False, customer_profile__isnull=False))
    agents = list(User.objects.filter(is_staff=True, is_superuser=False))
    if not customers or not agents:
        return 0
    articles = list(Article.objects.filter(status="published").values_list("pk", flat=True))
    rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
    today = today or services.local_today()
    first = today - dt.timedelta(days=days)
    count = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for n in range(days):
            day = first + dt.timedelta(days=n)
            # The AI gets better over the weeks: more resolved on its own.
            skill = 0.45 + 0.25 * n / max(days - 1, 1)
            for k in range(rng.randint(14, 30) if day.weekday() < 5 else rng.randint(4, 10)):
                _ticket(cursor, rng, day, k + 1, skill, customers, agents, articles)
                count += 1
            _searches(cursor, rng, day, customers)
            if articles:
                for article_id in rng.sample(articles, min(len(articles), 4)):
                    metric_increment(
                        [article_id],
                        day=day,
                        views=rng.randint(3, 40),
                        helpful_votes=rng.randint(0, 4),
                        not_helpful_votes=rng.randint(0, 2),
                    )
    for n in range(days + 1):  # and today, as far as it went
        services.rollup_day(first + dt.timedelta(days=n))
    return count


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    start, _ = services.day_bounds(day)
    return start + dt.timedelta(seconds=rng.randint(8 * 3600, 20 * 3600))


def _ticket(cursor, rng, day, number, skill, customers, agents, articles) -> None:
    customer = rng.choice(customers)
    subject, type_ = rng.choice(SUBJECTS)
    created = _at(day, rng)
    model = rng.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0]
    roll = rng.random() + (0.05 if model.startswith("gpt") else -0.05)
    decision = "resolve" if roll < skill else ("ask" if roll < skill + 0.1 else "escalate")
    confidence = round(
        rng.uniform(0.7, 0.99) if decision == "resolve" else rng.uniform(0.15, 0.8), 2
    )
    tokens_in, tokens_out = rng.randint(900, 2600), rng.randint(120, 420)
    answered = created + dt.timedelta(seconds=rng.randint(8, 40))
    events = [(created, "created", "customer", customer.pk, "", "", "")]
    cursor.execute(
        """INSERT INTO support_ticket (reference, subject, description, type, status, priority,
               channel, satisfaction_comment, reopened_count, created_at, updated_at,
               sla_due_at, requester_id, organization_id)
           SELECT %s, %s, %s, %s, 'new', 'normal', 'web', '', 0, %s, %s, %s, u.id,
                  (SELECT organization_id FROM support_customerprofile WHERE user_id = u.id)
             FROM auth_user u WHERE u.id = %s
           RETURNING id""",
        [
            f"{PREFIX}{day:%Y%m%d}-{number:04d}",
            subject,
            f"{subject}. Can you help?",
            type_,
            created,
            created,
            created + dt.timedelta(hours=24),
            customer.pk,
        ],
    )
    ticket_id = cursor.fetchone()[0]
    messages = [(created, "customer", customer.pk, f"{subject}. Can you help?", False, None)]
    cited = rng.sample(articles, 1) if articles and decision != "escalate" else []
    ai = (model, confidence, tokens_in, tokens_out, cost_usd(model, tokens_in, tokens_out))
    status, resolved_at, first_response, assignee = "new", None, None, None
    if decision == "escalate":
        messages.append((answered, "ai", None, "AI attempt (not sent).", True, (*ai, "escalate")))
        events.append((answered, "escalated", "ai", None, "", "", ""))
        events.append((answered, "status_changed", "ai", None, "status", "new", "escalated"))
        assignee = rng.choice(agents)
        replied = answered + dt.timedelta(seconds=rng.randint(600, 5 * 3600))
        messages.append((replied, "agent", assignee.pk, "Thanks, I am on it.", False, None))
        first_response = replied
        done = replied + dt.timedelta(seconds=rng.randint(900, 20 * 3600))
        events.append(
            (
                replied,
                "status_changed",
                "agent",
                assignee.pk,
                "status",
                "escalated",
                "awaiting_customer",
            )
        )
        if done.date() < services.local_today():
            events.append((done, "resolved", "agent", assignee.pk, "", "", ""))
            events.append(
                (
                    done,
                    "status_changed",
                    "agent",
                    assignee.pk,
                    "status",
                    "awaiting_customer",
                    "resolved",
                )
            )
            status, resolved_at = "resolved", done
        else:
            status = "awaiting_customer"
    else:
        messages.append((answered, "ai", None, "Here is how to do it.", False, (*ai, decision)))
        first_response = answered
        if decision == "resolve":
            events.append((answered, "resolved", "ai", None, "", "", ""))
            events.append((answered, "status_changed", "ai", None, "status", "new", "resolved"))
            status, resolved_at = "resolved", answered
            # Less sure answers come back more often: the customer replies, a person ends it.
            back = answered + dt.timedelta(hours=rng.randint(2, 60))
            if rng.random() < (1 - confidence) * 1.2 and back.date() < day + dt.timedelta(2):
                assignee = rng.choice(agents)
                done = back + dt.timedelta(hours=rng.randint(1, 8))
                messages.append((back, "customer", customer.pk, "Still broken.", False, None))
                messages.append((done, "agent", assignee.pk, "Fixed on our side.", False, None))
                events.append((back, "reopened", "customer", customer.pk, "", "", ""))
                events.append(
                    (back, "status_changed", "customer", customer.pk, "status", "resolved", "new")
                )
                events.append((done, "resolved", "agent", assignee.pk, "", "", ""))
                events.append(
                    (done, "status_changed", "agent", assignee.pk, "status", "new", "resolved")
                )
                resolved_at = done
        else:
            events.append(
                (answered, "status_changed", "ai", None, "status", "new", "awaiting_customer")
            )
            status = "awaiting_customer"
            later = answered + dt.timedelta(hours=rng.randint(1, 20))
            if rng.random() < 0.7 and later.date() < services.local_today():
                # The customer's answer settles it; the ticket is resolved a little later.
                events.append((later, "resolved", "ai", None, "", "", ""))
                events.append(
                    (later, "status_changed", "ai", None, "status", "awaiting_customer", "resolved")
                )
                status, resolved_at = "resolved", later
    rating = None
    if resolved_at is not None and rng.random() < 0.45:
        good = decision == "resolve" and confidence > 0.85
        rating = rng.choice([4, 5, 5] if good else [2, 3, 4, 5])
        events.append(
            (
                resolved_at + dt.timedelta(hours=2),
                "rated",
                "customer",
                customer.pk,
                "satisfaction_rating",
                "",
                str(rating),
            )
        )
    cursor.execute(
        """UPDATE support_ticket SET status = %s, resolved_at = %s, first_response_at = %s,
               assignee_id = %s, satisfaction_rating = %s, ai_confidence = %s,
               rated_at = %s, reopened_count = %s
            WHERE id = %s""",
        [
            status,
            resolved_at,
            first_response,
            assignee.pk if assignee else None,
            rating,
            confidence,
            resolved_at + dt.timedelta(hours=2) if rating else None,
            sum(1 for event in events if event[1] == "reopened"),
            ticket_id,
        ],
    )
    cursor.executemany(
        """INSERT INTO support_message (ticket_id, created_at, sender_kind, author_id, body,
               is_internal, ai_model, ai_confidence, input_tokens, output_tokens, cost_usd,
               latency_ms, ai_decision, article_ids, example_ids, ai_reasoning)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '{}', '')""",
        [
            (
                ticket_id,
                when,
                kind,
                author,
                body,
                internal,
                *(meta[:5] if meta else ("", None, None, None, None)),
                rng.randint(900, 4000) if meta else None,
                meta[5] if meta else "",
                cited if meta else [],
            )
            for when, kind, author, body, internal, meta in messages
        ],
    )
    cursor.executemany(
        """INSERT INTO support_ticketevent (ticket_id, created_at, kind, actor_kind, actor_id,
               field, old_value, new_value, metadata, is_internal)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, false)""",
        [(ticket_id, *event, json.dumps({})) for event in events],
    )


def _searches(cursor, rng, day, customers) -> None:
    rows = []
    for _ in range(rng.randint(5, 15)):
        query = rng.choice(SEARCHES)
        gap = query in ("webhook retries", "sso")
        rows.append(
            (
                query,
                "help_center",
                0 if gap else 3,
                None if gap else round(rng.uniform(0.5, 0.9), 2),
                rng.choice(customers).pk if rng.random() < 0.6 else None,
                _at(day, rng),
            )
        )
    cursor.executemany(
        """INSERT INTO knowledge_searchlog (query, source, result_count, best_similarity,
               user_id, created_at) VALUES (%s, %s, %s, %s, %s, %s)""",
        rows,
    )
