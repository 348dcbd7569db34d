"""The AI's decision traces ("Why did the AI do this?"): what each analysis records, who may
read it (staff only: the API and the admin ticket page), and how long it is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.llm.anthropic import AnthropicProvider
from integrations.llm.local import LocalProvider
from support import services, tasks
from support.ai import confidence, pipeline, planner
from support.models import AnalysisTrace
from tests.ai.test_providers import ANTHROPIC_URL, anthropic_error
from tests.http_mock import MockRouter

STEP_NAMES = ["triage", "retrieval", "passages", "examples", "model", "confidence", "route"]


class SpyProvider(LocalProvider):
    """The offline provider, keeping what it was sent and what it answered."""

    def complete(self, **kwargs):
        self.sent = kwargs
        self.answered = super().complete(**kwargs)
        return self.answered


class BrokenProvider(LocalProvider):
    """A provider with a bug (not an outage the SDK reports): the analysis itself fails."""

    def complete(self, **kwargs):
        raise RuntimeError("unexpected shape from the provider")


def open_ticket(customer, subject, description):
    return services.ticket_open(requester=customer, subject=subject, description=description)


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def by_name(trace: AnalysisTrace) -> dict:
    return {step["step"]: step for step in trace.steps}


@pytest.fixture
def without_default_rules(db):
    # The shipped automation rules escalate policy tickets the moment they are opened
    # (tests/automation/test_defaults.py); without them the AI's own triage decides.
    from automation.models import Rule

    Rule.objects.filter(is_default=True).update(is_enabled=False)


# ---- what an analysis records -------------------------------------------------------------


@pytest.mark.django_db
def test_an_answered_ticket_explains_every_step(kb, customer, agent, local_provider, client):
    article = kb["Reset a forgotten password"]
    ticket = open_ticket(customer, "Reset forgotten password", "Reset forgotten password")
    provider = SpyProvider()

    assert pipeline.analyze_ticket(ticket.pk, provider=provider) == "resolved"

    ticket.refresh_from_db()
    trace = AnalysisTrace.objects.get(ticket=ticket)
    steps = by_name(trace)
    assert [s["step"] for s in trace.steps] == STEP_NAMES
    assert (trace.outcome, trace.decision, trace.provider, trace.ai_model) == (
        "resolved",
        "resolve",
        "local",
        "local-extractive",
    )
    assert trace.confidence == ticket.ai_confidence

    # Triage: the nearest labelled examples with their similarities, best first.
    text = f"{ticket.subject}\n{ticket.description}"
    expected = planner.production_examples().nearest(local_provider.embed_query(text))
    neighbours = steps["triage"]["neighbours"]
    assert [n["similarity"] for n in neighbours] == [round(s, 4) for s, _ in expected]
    assert neighbours[0]["text"] == expected[0][1]["text"]
    assert steps["triage"]["policy"] == [] and steps["triage"]["ticket_type"] == "account"

    # Retrieval: the article is first in both lists (title typed out, closest meaning).
    first = steps["retrieval"]["candidates"][0]
    assert (first["article_id"], first["keyword_rank"], first["vector_rank"]) == (article.pk, 1, 1)
    assert first["keyword_score"] > 0 and first["vector_similarity"] > 0.5
    ranked = [c for c in steps["retrieval"]["candidates"] if c["vector_rank"]]
    similarities = [c["vector_similarity"] for c in sorted(ranked, key=lambda c: c["vector_rank"])]
    assert similarities == sorted(similarities, reverse=True)
    fused = [c["fused_score"] for c in steps["retrieval"]["candidates"]]
    assert fused == sorted(fused, reverse=True)

    # The passages are those the model was given.
    sent = provider.sent["context"]["passages"]
    assert [(p["article_id"], p["similarity"]) for p in steps["passages"]["passages"]] == [
        (p["article_id"], p["similarity"]) for p in sent
    ]
    assert "Forgot password?" in steps["passages"]["passages"][0]["text"]

    # The model's structured output, and the confidence built from it.
    assert steps["model"]["output"] == provider.answered.data
    parts = steps["confidence"]["components"]
    assert parts["combined"] == trace.confidence
    assert parts["self_rating"] == round(provider.answered.data["confidence"], 3)
    assert parts["citation_factor"] == 1.0  # it cited what was retrieved
    similarities = [c["vector_similarity"] for c in steps["retrieval"]["candidates"]]
    assert parts["retrieval_strength"] == round(confidence.retrieval_strengths(similarities)[0], 3)

    route = steps["route"]
    assert (route["decision"], route["escalation_kind"]) == ("resolve", "")
    assert route["thresholds"]["auto_resolve_at"] == 0.85
    assert "at or above 0.85" in route["reason"] and trace.reason == route["reason"]

    # An agent asking for a draft later adds a second trace, newest first everywhere.
    assert pipeline.draft_for_people(ticket.pk, provider=LocalProvider()) == "drafted"
    listed = api(agent).get(f"/api/tickets/{ticket.reference}/ai-traces/").json()
    assert [t["outcome"] for t in listed["results"]] == ["drafted", "resolved"]
    assert listed["results"][1]["steps"] == trace.steps

    client.force_login(agent)
    html = client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    start = html.index("Why did the AI do this?")
    panel = html[start : html.index("</details>", start)]
    assert panel.index("outcome <strong>drafted") < panel.index("outcome <strong>resolved")
    assert f"/admin/knowledge/article/{article.pk}/change/" in panel  # candidates table
    assert "data-trace-neighbours" in panel and "data-trace-output" in panel
    assert "&quot;cited_article_ids&quot;" in panel  # the structured output, as JSON
    assert "<script" not in panel


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("description", "topic", "kind"),
    [
        ("I was charged twice, I want a refund of the extra charge.", "billing", "policy"),
        ("Please let me speak to a human, not a bot.", "human", "customer_requested"),
    ],
)
def test_a_policy_escalation_shows_the_rule_that_fired(
    without_default_rules, local_provider, customer, description, topic, kind
):
    ticket = open_ticket(customer, "Help", description)

    assert pipeline.analyze_ticket(ticket.pk, provider=LocalProvider()) == "escalated"

    steps = by_name(AnalysisTrace.objects.get(ticket=ticket))
    assert [rule["topic"] for rule in steps["triage"]["policy"]] == [topic]
    assert steps["triage"]["needs_human"] is True
    escalation = ticket.escalations.get()
    assert (steps["route"]["decision"], steps["route"]["escalation_kind"]) == ("escalate", kind)
    assert steps["route"]["reason"] == escalation.reason
    assert steps["triage"]["policy"][0]["why"] in escalation.reason


@pytest.mark.django_db
def test_a_provider_outage_is_in_the_trace_and_the_ticket_escalates(local_provider, customer):
    router = MockRouter()
    router.post(ANTHROPIC_URL).respond(
        529,
        json=anthropic_error(529, "overloaded_error", "Overloaded"),
        headers={"retry-after": "0"},
    )
    claude = AnthropicProvider(api_key="sk-test", max_retries=0, http_client=router.client())
    ticket = open_ticket(customer, "Invite", "How do I invite my teammates?")

    assert pipeline.analyze_ticket(ticket.pk, provider=claude) == "escalated"

    ticket.refresh_from_db()
    trace = AnalysisTrace.objects.get(ticket=ticket)
    steps = by_name(trace)
    assert ticket.status == "escalated" and ticket.escalations.get().kind == "ai_unavailable"
    assert (trace.outcome, trace.provider, trace.confidence) == ("escalated", "anthropic", None)
    assert steps["model"]["provider"] == "anthropic" and "verloaded" in steps["model"]["error"]
    assert "output" not in steps["model"] and steps["confidence"]["components"] is None
    assert steps["route"]["escalation_kind"] == "ai_unavailable"


@pytest.mark.django_db
def test_a_failed_analysis_records_a_failed_trace_and_still_escalates(
    local_provider, customer, monkeypatch
):
    broken = open_ticket(customer, "Invite", "How do I invite my teammates?")

    assert pipeline.analyze_ticket(broken.pk, provider=BrokenProvider()) == "escalated"

    broken.refresh_from_db()
    trace = AnalysisTrace.objects.get(ticket=broken)
    assert broken.status == "escalated" and broken.escalations.get().kind == "ai_unavailable"
    assert trace.outcome == "failed" and trace.provider == "local"
    assert trace.reason.startswith("AI analysis failed: RuntimeError")
    assert trace.steps == [
        {
            "step": "error",
            "error": "AI analysis failed: RuntimeError: unexpected shape from the provider",
        }
    ]

    # Failing after the plan: the steps it got to, then the error; nothing half-applied.
    def fail(**kwargs):
        raise ValueError("assessment refused")

    monkeypatch.setattr(services, "ticket_record_ai_assessment", fail)
    late = open_ticket(customer, "Invite", "How do I invite my teammates?")

    assert pipeline.analyze_ticket(late.pk, provider=LocalProvider()) == "escalated"

    trace = AnalysisTrace.objects.get(ticket=late)
    assert not late.messages.filter(sender_kind="ai").exists()
    assert trace.outcome == "failed"
    assert [s["step"] for s in trace.steps] == [*STEP_NAMES, "error"]
    assert "ValueError: assessment refused" in trace.steps[-1]["error"]


@pytest.mark.django_db
def test_a_trace_stays_small_and_storable_whatever_the_model_writes(ticket):
    from integrations.llm import Completion
    from support.ai import trace as ai_trace
    from support.ai.triage import Triage

    data = {"answer": "x" * 100_000, "cited_article_ids": list(range(500)), "confidence": 0.5}
    data["sentiment"] = float("nan")  # PostgreSQL's jsonb refuses NaN
    plan = planner.Plan(
        triage=Triage("general", 0.5, "normal", 0.0, False, [], neighbours=[(0.9, {})] * 50),
        results=[],
        completion=Completion(data=data, model="m", provider="anthropic"),
        confidence=0.3,
        decision=planner.ESCALATE,
        passages=[{"article_id": 1, "title": "T", "text": "y" * 100_000, "similarity": 0.5}] * 9,
    )

    trace = services.ai_trace_record(
        ticket_id=ticket.pk, outcome="escalated", steps=ai_trace.steps(plan)
    )

    trace.refresh_from_db()
    steps = by_name(trace)
    assert len(str(trace.steps)) < 30_000
    assert len(steps["model"]["output"]["answer"]) <= ai_trace.MAX_OUTPUT_TEXT
    assert steps["model"]["output"]["sentiment"] is None
    assert len(steps["triage"]["neighbours"]) == ai_trace.MAX_ITEMS


# ---- who may read them ----------------------------------------------------------------------


def record(ticket, **kwargs) -> AnalysisTrace:
    fields = {
        "outcome": "escalated",
        "decision": "escalate",
        "reason": "Always handled by people: refund request or billing dispute.",
        "steps": [
            {"step": "triage", "policy": [{"topic": "billing", "why": "refund request"}]},
            {"step": "route", "decision": "escalate", "escalation_kind": "policy"},
        ],
        **kwargs,
    }
    return services.ai_trace_record(ticket_id=ticket.pk, **fields)


@pytest.mark.django_db
def test_only_staff_read_traces(ticket, customer, agent):
    record(ticket)
    url = f"/api/tickets/{ticket.reference}/ai-traces/"

    staff = api(agent).get(url)
    owner = api(customer).get(url)
    anonymous = api().get(url)

    assert staff.status_code == 200
    assert staff.json()["results"][0]["steps"][0]["policy"][0]["topic"] == "billing"
    assert owner.status_code == 403 and "refund" not in owner.content.decode()
    assert anonymous.status_code == 401
    assert api(agent).get("/api/tickets/NOPE-1/ai-traces/").status_code == 404
    # Nor through the ticket itself.
    assert (
        "refund request"
        not in api(customer).get(f"/api/tickets/{ticket.reference}/").content.decode()
    )


@pytest.mark.django_db
def test_the_trace_list_is_paginated(ticket, agent):
    for n in range(3):
        record(ticket, reason=f"analysis {n}")

    page = api(agent).get(f"/api/tickets/{ticket.reference}/ai-traces/?page_size=2").json()

    assert page["count"] == 3 and page["next"]
    assert [t["reason"] for t in page["results"]] == ["analysis 2", "analysis 1"]


@pytest.mark.django_db
def test_the_ticket_page_panel_costs_one_query_however_many_traces(ticket, agent, client):
    client.force_login(agent)
    page = f"/admin/support/ticket/{ticket.pk}/change/"
    assert "Why did the AI do this?" not in client.get(page).content.decode()  # none yet

    record(ticket)
    with CaptureQueriesContext(connection) as one:
        client.get(page)
    for _ in range(12):
        record(ticket)
    with CaptureQueriesContext(connection) as many:
        html = client.get(page).content.decode()

    assert len(many) == len(one)
    assert "Why did the AI do this?" in html and "older ones in the API" in html
    assert html.count("Policy rule fired:") == 10


# ---- how long they are kept -----------------------------------------------------------------


@pytest.mark.django_db
def test_old_traces_are_deleted_and_recent_ones_kept(ticket, settings):
    settings.HELPDESK_AI_TRACE_RETENTION_DAYS = 30
    old = [record(ticket) for _ in range(3)]
    recent = record(ticket)
    edge = record(ticket)
    AnalysisTrace.objects.filter(pk__in=[t.pk for t in old]).update(
        created_at=timezone.now() - timedelta(days=31)
    )
    AnalysisTrace.objects.filter(pk=edge.pk).update(created_at=timezone.now() - timedelta(days=29))

    assert tasks.prune_ai_traces(batch=2) == 3

    assert set(AnalysisTrace.objects.values_list("pk", flat=True)) == {recent.pk, edge.pk}
    assert tasks.prune_ai_traces() == 0  # twice is the same
    # Beat runs it every night.
    assert settings.CELERY_BEAT_SCHEDULE["prune-ai-traces"]["task"] == tasks.prune_ai_traces.name
