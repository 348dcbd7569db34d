"""The agent's copilot on the ticket page: summarize, suggest a reply, rewrite, translate.

The offline provider on real tickets with embedded articles; Claude and GPT through their
real SDKs with HTTP mocked at the transport (the bodies those APIs return); each call's
record, the rate limit, who may use it, the rollups and dashboards that count it, and the
panel on the ticket page.
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from analytics import services as analytics_services
from analytics.models import DailyOverview, ModelPerformance
from core.errors import NotPermitted
from integrations.llm import cost_usd, get_provider
from support import services
from support.ai import copilot
from support.models import CopilotCall, Message, TrainingExample
from tests.ai.test_providers import ANTHROPIC_URL, OPENAI_URL, anthropic_error, openai_completion
from tests.http_mock import MockRouter

pytestmark = pytest.mark.django_db

UNAVAILABLE = "The AI provider is unavailable; try again."


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def url(ticket) -> str:
    return f"/api/tickets/{ticket.reference}/copilot/"


@pytest.fixture
def conversation(customer, agent):
    """A password ticket with a public answer, an internal note and a customer reply."""
    ticket = services.ticket_open(
        requester=customer,
        subject="Forgot my password",
        description="I forgot my password and cannot sign in. How do I reset it?",
        type="account",
    )
    services.message_add(
        ticket=ticket, author=agent, body="Did you try the Forgot password link? It emails you."
    )
    services.message_add(
        ticket=ticket,
        author=agent,
        body="Checked the mail log: our reset email bounced once.",
        is_internal=True,
    )
    services.message_add(
        ticket=ticket, author=customer, body="Yes, but no email arrived. I checked spam too."
    )
    return ticket


def anthropic_response(schema_name: str, tool_input: dict, model="claude-sonnet-4-6") -> dict:
    # The shape of a Messages API response (anthropic.types.Message) with a tool_use block.
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": schema_name,
                "input": tool_input,
            }
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 1450,
            "output_tokens": 210,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


@pytest.fixture
def router(monkeypatch):
    """The configured provider (from settings) with its HTTP mocked at the transport."""
    mock = MockRouter()
    monkeypatch.setattr(
        copilot, "get_provider", functools.partial(get_provider, http_client=mock.client())
    )
    return mock


@pytest.fixture
def claude(settings, router):
    settings.HELPDESK_LLM_PROVIDER = "anthropic"
    settings.ANTHROPIC_API_KEY = "sk-test"
    settings.HELPDESK_LLM_MODEL = ""
    return router


@pytest.fixture
def gpt(settings, router):
    settings.HELPDESK_LLM_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "sk-test"
    settings.HELPDESK_LLM_MODEL = ""
    return router


#: Per action: the request body, the model's structured result, the text the agent gets.
CASES = {
    "summarize": (
        {"action": "summarize"},
        {"summary": "Customer cannot reset the password; the reset email bounced."},
        "Customer cannot reset the password; the reset email bounced.",
    ),
    "suggest": (
        {"action": "suggest"},
        {"reply": "Hello, we re-sent the reset link.", "cited_article_ids": []},
        "Hello, we re-sent the reset link.",
    ),
    "rewrite": (
        {"action": "rewrite", "text": "Reset it yourself.", "tone": "friendlier"},
        {"text": "Happy to help! You can reset it from the sign-in page."},
        "Happy to help! You can reset it from the sign-in page.",
    ),
    "translate": (
        {"action": "translate", "text": "We sent you a new link.", "language": "de"},
        {"text": "Wir haben Ihnen einen neuen Link geschickt.", "language": "de"},
        "Wir haben Ihnen einen neuen Link geschickt.",
    ),
}
SCHEMA_NAMES = {
    "summarize": "copilot_summary",
    "suggest": "copilot_reply",
    "rewrite": "copilot_rewrite",
    "translate": "copilot_translation",
}


# ======================================================================================
# The offline provider
# ======================================================================================


def test_local_summary_names_the_request_what_was_tried_and_the_state(conversation, agent):
    result = copilot.summarize(ticket=conversation, user=agent)

    lines = result.text.splitlines()
    assert lines[0] == "Request: I forgot my password and cannot sign in. How do I reset it?"
    assert "- Agent: Did you try the Forgot password link?" in result.text
    # Internal notes are in the staff's summary, marked as such.
    assert "- Agent (internal note): Checked the mail log: our reset email bounced once." in lines
    assert "Last: the customer wrote: Yes, but no email arrived." in result.text
    assert lines[-1] == "Now: waiting for us."
    assert (result.model, result.provider, result.cost_usd) == ("local-extractive", "local", 0)
    call = CopilotCall.objects.get()
    assert (call.kind, call.provider, call.ai_model, call.succeeded) == (
        "summarize",
        "local",
        "local-extractive",
        True,
    )
    assert call.ticket == conversation and call.user == agent
    # The same conversation, the same summary: extractive and deterministic.
    assert copilot.summarize(ticket=conversation, user=agent).text == result.text


def test_local_suggestion_from_the_knowledge_base_and_similar_tickets(
    kb, conversation, agent, customer, local_provider
):
    solved = services.ticket_open(
        requester=customer, subject="Password reset", description="How do I reset my password?"
    )
    TrainingExample.objects.create(
        ticket=solved,
        ticket_type="account",
        question="How do I reset my password?",
        answer="Use Forgot password? on the sign-in page.",
        anonymized_question="How do I reset my password? I forgot it and cannot sign in.",
        anonymized_answer="Use Forgot password? on the sign-in page.",
        outcome=TrainingExample.Outcome.SUCCESSFUL,
        satisfaction_rating=5,
        author_kind=TrainingExample.AuthorKind.HUMAN,
        status=TrainingExample.Status.APPROVED,
        quality_score=5,
        embedding=local_provider.embed_query(
            "How do I reset my password? I forgot it and cannot sign in."
        ),
    )

    messages = conversation.messages.count()

    response = api(agent).post(url(conversation), {"action": "suggest"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    article = kb["Reset a forgotten password"]
    assert "Reset a forgotten password" in body["text"]
    # The customer's latest message ("no email arrived") picks the article's section on it.
    assert "Check the spam folder" in body["text"]
    assert {
        "kind": "article",
        "id": article.pk,
        "title": "Reset a forgotten password",
        "url": body["sources"][0]["url"],
    } == body["sources"][0]
    assert body["sources"][0]["url"].endswith(article.get_absolute_url())
    assert {"kind": "ticket", "reference": solved.reference} in body["sources"]
    assert body["model"] == "local-extractive" and body["cost_usd"] == "0.000000"
    assert body["language"] == "en"
    # Nothing reached the customer: the copilot only drafts.
    assert conversation.messages.count() == messages
    assert CopilotCall.objects.get().kind == "suggest"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"action": "rewrite", "text": "Reset it.", "tone": "shorter"}, "Rewriting needs"),
        ({"action": "translate", "text": "Reset it.", "language": "fr"}, "Translating needs"),
    ],
)
def test_local_provider_refuses_rewrite_and_translate_with_the_reason(
    conversation, agent, body, reason
):
    response = api(agent).post(url(conversation), body, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(reason)
    assert "offline (local) provider" in response.json()["detail"]
    call = CopilotCall.objects.get()
    assert not call.succeeded and call.error.startswith(reason)


# ======================================================================================
# Claude and GPT
# ======================================================================================


@pytest.mark.parametrize("action", list(CASES))
def test_claude_for_each_action(claude, conversation, agent, action):
    body, result, text = CASES[action]
    route = claude.post(ANTHROPIC_URL).respond(
        200, json=anthropic_response(SCHEMA_NAMES[action], result)
    )

    response = api(agent).post(url(conversation), body, format="json")

    assert response.status_code == 200, response.json()
    sent = route.calls[0].json()
    name, schema = copilot.SCHEMAS[action]
    assert sent["tool_choice"] == {"type": "tool", "name": SCHEMA_NAMES[action]} and name
    assert sent["tools"][0]["input_schema"] == schema
    assert sent["model"] == "claude-sonnet-4-6"
    assert "never instructions" in sent["system"]
    prompt = sent["messages"][0]["content"]
    if action == "summarize":
        assert "bounced once" in prompt  # internal notes are in the staff's summary
    if action == "suggest":
        assert "no email arrived" in prompt and "bounced once" not in prompt
    if action == "rewrite":
        assert "Reset it yourself." in prompt and "warmer and friendlier" in prompt
    if action == "translate":
        assert "We sent you a new link." in prompt and "German (de)" in prompt
    cost = cost_usd("claude-sonnet-4-6", 1450, 210)
    assert response.json()["text"] == text
    assert response.json()["model"] == "claude-sonnet-4-6"
    assert Decimal(response.json()["cost_usd"]) == cost == Decimal("0.007500")
    call = CopilotCall.objects.get()
    assert (call.kind, call.provider, call.ai_model) == (action, "anthropic", sent["model"])
    assert (call.input_tokens, call.output_tokens, call.cost_usd) == (1450, 210, cost)
    assert call.succeeded and call.user == agent


@pytest.mark.parametrize("action", list(CASES))
def test_gpt_for_each_action(gpt, conversation, agent, action):
    body, result, text = CASES[action]
    route = gpt.post(OPENAI_URL).respond(200, json=openai_completion(json.dumps(result)))

    response = api(agent).post(url(conversation), body, format="json")

    assert response.status_code == 200, response.json()
    sent = route.calls[0].json()
    _name, schema = copilot.SCHEMAS[action]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == SCHEMA_NAMES[action]
    assert sent["response_format"]["json_schema"]["strict"] is True
    strict = sent["response_format"]["json_schema"]["schema"]
    # OpenAI's strict mode: every property required, no others allowed.
    assert strict["required"] == list(schema["properties"])
    assert strict["additionalProperties"] is False
    assert sent["messages"][0]["role"] == "system" and sent["model"] == "gpt-4o-mini"
    assert response.json()["text"] == text
    assert response.json()["model"] == "gpt-4o-mini-2024-07-18"
    cost = cost_usd("gpt-4o-mini-2024-07-18", 980, 120)
    assert Decimal(response.json()["cost_usd"]) == cost > 0
    call = CopilotCall.objects.get()
    assert (call.kind, call.provider, call.ai_model) == (
        action,
        "openai",
        "gpt-4o-mini-2024-07-18",
    )
    assert (call.input_tokens, call.output_tokens, call.cost_usd) == (980, 120, cost)


def test_claude_suggestion_keeps_only_citations_of_retrieved_articles(
    kb, claude, conversation, agent
):
    article = kb["Reset a forgotten password"]
    route = claude.post(ANTHROPIC_URL).respond(
        200,
        json=anthropic_response(
            "copilot_reply",
            {
                "reply": "Use Forgot password? on the sign-in page.",
                "cited_article_ids": [
                    article.pk,
                    999_999,
                ],
            },
        ),
    )

    body = api(agent).post(url(conversation), {"action": "suggest"}, format="json").json()

    assert "Reset a forgotten password" in route.calls[0].json()["messages"][0]["content"]
    assert [s.get("id") for s in body["sources"]] == [article.pk]


def test_translation_goes_to_the_customers_language(gpt, customer, agent):
    ticket = services.ticket_open(
        requester=customer,
        subject="No puedo iniciar sesión",
        description="Hola, desde ayer no puedo iniciar sesión en mi cuenta. ¿Me pueden ayudar?",
    )
    route = gpt.post(OPENAI_URL).respond(
        200,
        json=openai_completion(json.dumps({"text": "Le enviamos un enlace.", "language": "es"})),
    )

    response = api(agent).post(
        url(ticket), {"action": "translate", "text": "We sent you a link."}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "text": "Le enviamos un enlace.",
        "sources": [],
        "model": "gpt-4o-mini-2024-07-18",
        "cost_usd": str(cost_usd("gpt-4o-mini-2024-07-18", 980, 120)),
        "language": "es",
    }
    assert "Spanish (es)" in route.calls[0].json()["messages"][1]["content"]


def test_language_detection_works_offline():
    assert copilot.detect_language(["Bonjour, je ne peux pas me connecter à mon compte."]) == "fr"
    assert copilot.detect_language(["Hallo, ich kann mich nicht anmelden, bitte helfen."]) == "de"
    assert copilot.detect_language(["ok"]) is None


# ======================================================================================
# Failures, limits, permissions, validation
# ======================================================================================


def test_provider_failure_is_recorded_and_answers_503(settings, claude, conversation, agent):
    settings.HELPDESK_LLM_MAX_RETRIES = 1
    route = claude.post(ANTHROPIC_URL).respond(
        500,
        json=anthropic_error(500, "api_error", "Internal server error"),
        headers={"retry-after": "0"},
    )
    status_before, messages = conversation.status, conversation.messages.count()

    response = api(agent).post(url(conversation), {"action": "summarize"}, format="json")

    assert route.call_count == 2  # the SDK retried once
    assert response.status_code == 503
    assert response.json() == {"detail": UNAVAILABLE, "code": "service_unavailable"}
    assert response["Retry-After"]
    call = CopilotCall.objects.get()
    assert not call.succeeded and "unavailable" in call.error
    assert (call.provider, call.ai_model, call.cost_usd) == ("anthropic", "claude-sonnet-4-6", 0)
    conversation.refresh_from_db()
    assert conversation.status == status_before
    assert conversation.messages.count() == messages
    # The failed call does not count as a request or a cost in the dashboards.
    analytics_services.rollup_day(analytics_services.local_today())
    assert DailyOverview.objects.get().copilot_requests == 0


def test_unusable_output_is_recorded_and_answers_503(gpt, conversation, agent):
    route = gpt.post(OPENAI_URL).respond(200, json=openai_completion("Sure! Here it is:"))

    response = api(agent).post(url(conversation), {"action": "summarize"}, format="json")

    assert route.call_count == 2  # one more try when the output has the wrong shape
    assert response.status_code == 503 and response.json()["detail"] == UNAVAILABLE
    call = CopilotCall.objects.get()
    assert not call.succeeded and "not JSON" in call.error


def test_missing_key_is_a_clear_error(settings, conversation, agent):
    settings.HELPDESK_LLM_PROVIDER = "openai"
    settings.OPENAI_API_KEY = ""

    response = api(agent).post(url(conversation), {"action": "summarize"}, format="json")

    assert response.status_code == 400
    assert "needs OPENAI_API_KEY" in response.json()["detail"]
    assert not CopilotCall.objects.get().succeeded


def test_rate_limit_per_agent(settings, conversation, agent, manager):
    settings.HELPDESK_COPILOT_PER_HOUR = 2
    client = api(agent)
    answers = [
        client.post(url(conversation), {"action": "summarize"}, format="json") for _ in range(3)
    ]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["code"] == "throttled"
    assert "2 times this hour" in answers[2].json()["detail"]
    assert int(answers[2]["Retry-After"]) > 0
    assert CopilotCall.objects.count() == 2  # the refused call reached no provider
    # Another agent has a budget of their own.
    other = api(manager).post(url(conversation), {"action": "summarize"}, format="json")
    assert other.status_code == 200


@pytest.mark.parametrize("who", ["anonymous", "customer", "org_admin"])
def test_customers_and_visitors_cannot_use_the_copilot(request, conversation, who):
    user = None if who == "anonymous" else request.getfixturevalue(who)

    response = api(user).post(url(conversation), {"action": "summarize"}, format="json")

    assert response.status_code == (401 if user is None else 403)
    assert not CopilotCall.objects.exists()


def test_the_service_refuses_customers(conversation, customer):
    with pytest.raises(NotPermitted):
        copilot.summarize(ticket=conversation, user=customer)


def test_an_unknown_ticket_is_404(agent):
    response = api(agent).post(
        "/api/tickets/T-NOPE/copilot/", {"action": "summarize"}, format="json"
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "action"),
        ({"action": "explain"}, "action"),
        ({"action": "rewrite", "tone": "shorter"}, "text"),
        ({"action": "rewrite", "text": "Hi"}, "tone"),
        ({"action": "rewrite", "text": "Hi", "tone": "angrier"}, "tone"),
        ({"action": "translate", "text": "   "}, "text"),
        ({"action": "translate", "text": "Hi", "language": "not a language"}, "language"),
        ({"action": "translate", "text": "x" * 8001}, "text"),
        ({"action": "rewrite", "text": 0, "tone": "shorter"}, "text"),
        ({"action": "translate", "text": "Hi", "language": 7}, "language"),
    ],
)
def test_bad_input_answers_400_with_the_field(conversation, agent, body, field):
    response = api(agent).post(url(conversation), body, format="json")

    assert response.status_code == 400
    assert field in response.json() and response.json()[field][0]
    assert not CopilotCall.objects.exists()


def test_no_detectable_language_asks_for_one(gpt, customer, agent):
    ticket = services.ticket_open(requester=customer, subject="?", description="ok")

    response = api(agent).post(url(ticket), {"action": "translate", "text": "Hi"}, format="json")

    assert response.status_code == 400
    assert "choose one" in response.json()["language"][0]


# ======================================================================================
# Dashboards
# ======================================================================================


def test_the_rollup_counts_copilot_calls_and_their_cost(conversation, agent, manager, client):
    day = analytics_services.local_today()
    claude_call = {"provider": "anthropic", "ai_model": "claude-sonnet-4-6"}
    for kind in ("summarize", "rewrite"):
        services.copilot_call_record(
            ticket=conversation,
            user=agent,
            kind=kind,
            **claude_call,
            input_tokens=1450,
            output_tokens=210,
            cost_usd=Decimal("0.007500"),
        )
    services.copilot_call_record(
        ticket=conversation, user=agent, kind="summarize", **claude_call, error="down"
    )
    services.copilot_call_record(
        ticket=conversation,
        user=agent,
        kind="translate",
        provider="openai",
        ai_model="gpt-4o-mini",
        cost_usd=Decimal("0.000300"),
    )
    # One analysis by Claude the same day.
    services.message_add(
        ticket=conversation,
        author=None,
        sender_kind=Message.SenderKind.AI,
        is_internal=True,
        body="AI draft",
        ai=services.AiMetadata(model="claude-sonnet-4-6", confidence=0.9, cost_usd=Decimal("0.01")),
    )

    analytics_services.rollup_day(day)

    claude = ModelPerformance.objects.get(day=day, ai_model="claude-sonnet-4-6")
    assert (claude.requests, claude.cost_usd) == (1, Decimal("0.01"))
    assert (claude.copilot_requests, claude.copilot_cost_usd) == (2, Decimal("0.015"))
    # A model only the copilot used that day has a row too.
    mini = ModelPerformance.objects.get(day=day, ai_model="gpt-4o-mini")
    assert (mini.requests, mini.copilot_requests, mini.copilot_cost_usd) == (
        0,
        1,
        Decimal("0.0003"),
    )
    overview = DailyOverview.objects.get(day=day)
    assert (overview.copilot_requests, overview.copilot_cost_usd) == (3, Decimal("0.0153"))
    assert overview.ai_requests == 1
    assert overview.ai_cost_usd == Decimal("0.0253")  # analyses and copilot together
    # Idempotent: the same day again, the same figures.
    analytics_services.rollup_day(day)
    assert DailyOverview.objects.get(day=day).ai_cost_usd == Decimal("0.0253")

    client.force_login(manager)
    query = {"start": day.isoformat(), "end": day.isoformat()}
    page = client.get(reverse("analytics:models"), query).content.decode()
    assert "Copilot calls" in page and "Copilot cost" in page
    assert "gpt-4o-mini" in page
    models = client.get(reverse("api-analytics-models"), query).json()["models"]
    by_model = {row["ai_model"]: row for row in models}
    assert by_model["claude-sonnet-4-6"]["copilot_requests"] == 2
    assert Decimal(by_model["gpt-4o-mini"]["copilot_cost_usd"]) == Decimal("0.0003")
    totals = client.get(reverse("api-analytics-overview"), query).json()["totals"]
    assert totals["copilot_requests"] == 3
    assert Decimal(totals["ai_cost_usd"]) == Decimal("0.0253")
    overview_page = client.get(reverse("analytics:overview"), query).content.decode()
    assert "Copilot calls" in overview_page


# ======================================================================================
# The ticket page
# ======================================================================================


def test_the_ticket_page_shows_the_panel(client, conversation, agent):
    client.force_login(agent)

    page = client.get(reverse("admin:support_ticket_change", args=[conversation.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "data-copilot" in html and 'data-copilot-action="summarize"' in html
    assert url(conversation) in html
    assert "js/copilot.js" in html
    # Offline: rewrite and translate are disabled, with the reason.
    assert 'data-copilot-action="rewrite" disabled title="Rewriting needs an AI model' in html
    assert 'data-copilot-action="translate" disabled title="Translating needs' in html
    assert "Translate to English" in html
    assert "Insert into reply" in html


def test_the_ticket_page_enables_every_action_with_a_model(settings, client, conversation, agent):
    settings.HELPDESK_LLM_PROVIDER = "anthropic"
    client.force_login(agent)

    html = client.get(
        reverse("admin:support_ticket_change", args=[conversation.pk])
    ).content.decode()

    assert 'data-copilot-action="rewrite" title="Rewrite the draft' in html
    assert 'data-copilot-action="translate" title="Translate the draft' in html


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_panel_in_a_real_browser(browser, live_server, conversation, agent):
    """Summarize through the page's script (session + CSRF), then insert into the reply."""
    from tests.conftest import ARTIFACTS, browser_login

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    browser_login(page, live_server, agent.username)
    messages = conversation.messages.count()

    page.goto(f"{live_server.url}/admin/support/ticket/{conversation.pk}/change/")
    assert page.locator('[data-copilot-action="rewrite"]').is_disabled()  # offline provider
    page.click('[data-copilot-action="summarize"]')
    page.wait_for_selector("[data-copilot-result]:not([hidden])")
    summary = page.input_value("[data-copilot-text]")
    assert summary.startswith("Request: I forgot my password")
    assert "local-extractive" in page.inner_text("[data-copilot-cost]")
    page.click("[data-copilot-insert]")
    assert page.input_value("#hd-reply-body") == summary
    page.screenshot(path=ARTIFACTS / "copilot-panel.png", full_page=True)
    assert not errors
    assert CopilotCall.objects.get().kind == "summarize"
    assert conversation.messages.count() == messages  # nothing was sent
    page.close()


def test_agents_see_the_calls_read_only_in_admin(client, conversation, agent):
    copilot.summarize(ticket=conversation, user=agent)
    client.force_login(agent)

    listing = client.get(reverse("admin:support_copilotcall_changelist"))

    assert listing.status_code == 200
    html = listing.content.decode()
    assert conversation.reference in html and "local-extractive" in html
    call = CopilotCall.objects.get()
    detail = client.get(reverse("admin:support_copilotcall_change", args=[call.pk]))
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert client.get(reverse("admin:support_copilotcall_add")).status_code == 403
