"""The AI agent working by tool use on real tickets: Claude and GPT through their SDKs
(HTTP mocked at the transport, the APIs' own response shapes), HTTP actions against a
local shop server, the customer's confirmation and an agent's approval before a change
runs, every call in the ticket's AI trace; the offline provider's deterministic plan;
replies in the customer's language."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from integrations.llm.anthropic import AnthropicProvider
from integrations.llm.local import LocalProvider
from integrations.llm.openai import OpenAIProvider
from support import services
from support.ai import language, pipeline
from support.models import ActionRun, AnalysisTrace, Ticket
from support.tasks import execute_action_run
from tests.ai.test_providers import ANTHROPIC_URL, OPENAI_URL, RESULT
from tests.ai.test_tool_use import claude_turn, gpt_turn
from tests.http_mock import MockRouter
from tests.support.test_actions import Shop, make_action

pytestmark = pytest.mark.django_db

STATUS_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "pattern": "^A-[0-9]{4}$"}},
    "required": ["order_id"],
    "additionalProperties": False,
}


@pytest.fixture
def shop():
    server = Shop()
    yield server
    server.close()


@pytest.fixture
def order_status(manager, shop):
    return make_action(
        manager,
        shop,
        name="order-status",
        title="Order status",
        description="Where an order is: its status and tracking number.",
        method="GET",
        url_template=f"{shop.url}/api/orders/{{order_id}}",
        parameters_schema=STATUS_SCHEMA,
        changes_data=False,
    )


def open_ticket(customer, subject, description):
    return services.ticket_open(requester=customer, subject=subject, description=description)


def answer(**changes):
    return {**RESULT, "cited_article_ids": [], **changes}


def claude_answer(data, **usage):
    return claude_turn(("toolu_answer", "ticket_answer", data), text="", **usage)


def gpt_answer(data):
    return gpt_turn(("call_answer", "ticket_answer", data))


def trace_of(ticket) -> dict:
    steps = AnalysisTrace.objects.filter(ticket=ticket).latest("id").steps
    return {step["step"]: step for step in steps}


def test_claude_reads_the_order_and_the_history_then_answers(
    kb, customer, agent, client, order_status, shop, monkeypatch
):
    monkeypatch.setenv("SHOP_TOKEN", "s3cr3t")
    order_status.secret_env_var = "SHOP_TOKEN"
    order_status.save()
    earlier = open_ticket(customer, "Order A-1234 late", "Where is it?")
    ticket = open_ticket(customer, "Still waiting", "Order A-1234 has still not arrived.")
    shop.script = [(200, {"status": "shipped", "tracking": "ZX81"})]
    router = MockRouter()
    route = router.post(ANTHROPIC_URL).queue(
        (200, claude_turn(("toolu_1", "get_customer_history", {}))),
        (200, claude_turn(("toolu_2", "action_order_status", {"order_id": "A-1234"}))),
        (200, claude_answer(answer(answer="It shipped: tracking ZX81.", confidence=0.95))),
    )
    claude = AnthropicProvider(api_key="sk-test", http_client=router.client())

    # An answer that rests on the shop's record needs no article to be sure of.
    assert pipeline.analyze_ticket(ticket.pk, provider=claude) == "resolved"

    # The shop got the call, with the key from the environment.
    assert shop.requests[0]["method"] == "GET"
    assert shop.requests[0]["path"] == "/api/orders/A-1234"
    assert shop.requests[0]["headers"]["Authorization"] == "Bearer s3cr3t"
    # The model was offered the tools, and read each result in a tool_result block.
    first = route.calls[0].json()
    offered = {tool["name"] for tool in first["tools"]}
    assert {"search_knowledge_base", "get_customer_history", "action_order_status"} <= offered
    assert {"create_follow_up", "escalate_to_human", "ticket_answer"} <= offered
    assert first["tool_choice"] == {"type": "any"}
    history = route.calls[1].json()["messages"][-1]["content"][0]
    assert history["type"] == "tool_result" and earlier.reference in history["content"]
    order = route.calls[2].json()["messages"][-1]["content"][0]
    assert json.loads(order["content"])["status"] == 200 and "ZX81" in order["content"]
    # The customer got the answer; every call is in the trace.
    ticket.refresh_from_db()
    assert (
        ticket.messages.filter(sender_kind="ai", is_internal=False)
        .last()
        .body.startswith("It shipped")
    )
    model = trace_of(ticket)["model"]
    assert model["requests"] == 3
    assert [c["name"] for c in model["tool_calls"]] == [
        "get_customer_history",
        "action_order_status",
    ]
    assert model["tool_calls"][1]["arguments"] == {"order_id": "A-1234"}
    assert "ZX81" in json.dumps(model["tool_calls"][1]["result"])
    assert model["input_tokens"] == 3000  # every request counted
    assert trace_of(ticket)["confidence"]["components"]["grounded_by_action"] is True
    # Agents read the calls on the ticket page ("Why did the AI do this?").
    client.force_login(agent)
    page = client.get(reverse("admin:support_ticket_change", args=[ticket.pk])).content.decode()
    assert "data-trace-tools" in page and "action_order_status" in page and "ZX81" in page


def test_gpt_requests_a_refund_the_customer_confirms_and_an_agent_approves(
    kb, customer, agent, manager, shop
):
    refund = make_action(manager, shop, name="refund-order", requires_approval=True)
    ticket = open_ticket(customer, "Broken mug", "Order 7781 arrived broken. What can you do?")
    router = MockRouter()
    router.post(OPENAI_URL).queue(
        (200, gpt_turn(("call_1", "action_refund_order", {"order_id": "7781", "amount": 12.5}))),
        (200, gpt_answer(answer(answer="I have asked for a refund of 12.50.", confidence=0.9))),
    )
    gpt = OpenAIProvider(api_key="sk-test", http_client=router.client())

    assert pipeline.analyze_ticket(ticket.pk, provider=gpt) == "asked"

    # Nothing ran yet: the customer is asked to confirm.
    assert shop.requests == []
    run = ActionRun.objects.get(ticket=ticket)
    assert (run.action, run.status, run.arguments) == (
        refund,
        "awaiting_confirmation",
        {"order_id": "7781", "amount": 12.5},
    )
    ticket.refresh_from_db()
    assert ticket.status == "awaiting_customer"
    reply = ticket.messages.filter(sender_kind="ai").last().body
    assert "please confirm it on this ticket" in reply and "Refund an order" in reply
    assert ticket.get_absolute_url() in reply  # a link, for an email reader too
    assert trace_of(ticket)["model"]["tool_calls"][0]["result"]["status"] == "requested"

    services.action_run_confirm(run=run, actor=customer)
    run.refresh_from_db()
    assert run.status == "awaiting_approval" and shop.requests == []
    services.action_run_approve(run=run, actor=agent)
    execute_action_run(run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded"
    assert shop.requests[0]["path"] == "/api/orders/7781/refund"
    assert shop.json(0)["amount"] == 12.5


def test_the_model_hands_the_ticket_to_people_with_its_reason(kb, customer):
    ticket = open_ticket(customer, "Contract", "We need custom terms in our enterprise contract.")
    router = MockRouter()
    router.post(ANTHROPIC_URL).queue(
        (200, claude_turn(("toolu_1", "escalate_to_human", {"reason": "Contract terms"}))),
        (200, claude_answer(answer(answer="A colleague will contact you.", confidence=0.9))),
    )
    claude = AnthropicProvider(api_key="sk-test", http_client=router.client())

    assert pipeline.analyze_ticket(ticket.pk, provider=claude) == "escalated"

    escalation = ticket.escalations.get()
    assert escalation.reason == "The AI handed it to people: Contract terms"


def test_a_second_request_in_the_message_becomes_a_follow_up_ticket(kb, customer):
    ticket = open_ticket(customer, "Password", "How do I reset my password? Also, add dark mode.")
    router = MockRouter()
    router.post(OPENAI_URL).queue(
        (
            200,
            gpt_turn(
                (
                    "call_1",
                    "create_follow_up",
                    {"subject": "Dark mode", "description": "The customer asks for dark mode."},
                )
            ),
        ),
        (200, gpt_answer(answer(answer="Choose Forgot password?", confidence=0.9))),
    )
    gpt = OpenAIProvider(api_key="sk-test", http_client=router.client())

    pipeline.analyze_ticket(ticket.pk, provider=gpt)

    follow_up = Ticket.objects.exclude(pk=ticket.pk).get(requester=customer)
    assert follow_up.subject == "Dark mode"
    assert follow_up.description.startswith(f"Follow-up of {ticket.reference}:")
    # A follow-up is offered no follow-up of its own: no chain of tickets.
    toolbox = pipeline.tools.Toolbox(ticket=follow_up)
    assert "create_follow_up" not in {tool.name for tool in toolbox.tools}


def test_the_offline_provider_plans_a_read_only_action_the_message_spells_out(
    kb, customer, order_status, shop
):
    shop.script = [(200, {"status": "in transit"})]
    ticket = open_ticket(customer, "Order", "What is the order status of A-4321?")
    vague = open_ticket(customer, "Order", "What is the status of my order?")

    pipeline.analyze_ticket(ticket.pk, provider=LocalProvider())
    pipeline.analyze_ticket(vague.pk, provider=LocalProvider())

    assert [r["path"] for r in shop.requests] == ["/api/orders/A-4321"]  # only when spelled out
    calls = trace_of(ticket)["model"]["tool_calls"]
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("action_order_status", {"order_id": "A-4321"})
    ]
    assert trace_of(vague)["model"]["tool_calls"] == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("How do I reset my password?", "en"),
        ("Wie kann ich mein Passwort zurücksetzen?", "de"),
        ("Je n'arrive pas à exporter mes factures", "fr"),
        ("ok thanks", "en"),
        ("Export CSV", "en"),  # too short to tell: the help center's language
    ],
)
def test_the_customers_language(text, code):
    assert language.detect(text).code == code


def test_claude_is_asked_to_answer_in_the_customers_language(kb, customer):
    ticket = open_ticket(customer, "Passwort", "Wie kann ich mein Passwort zurücksetzen?")
    router = MockRouter()
    route = router.post(ANTHROPIC_URL).queue((200, claude_answer(answer(confidence=0.9))))
    claude = AnthropicProvider(api_key="sk-test", http_client=router.client())

    pipeline.analyze_ticket(ticket.pk, provider=claude)

    prompt = route.calls[0].json()["messages"][0]["content"]
    assert "The customer writes in German: answer in German." in prompt
    assert trace_of(ticket)["triage"]["language"] == "de"


def test_the_offline_provider_says_the_article_is_in_another_language(kb, customer):
    ticket = open_ticket(
        customer,
        "Forgot password",
        "Hallo, ich habe mein password vergessen. Wie funktioniert der reset link auf der "
        "sign-in Seite?",
    )

    pipeline.analyze_ticket(ticket.pk, provider=LocalProvider())

    reply = ticket.messages.filter(sender_kind="ai").last().body
    assert reply.startswith("(This answer comes from our English help center")
    assert "German" in reply.splitlines()[0]
