"""The help center's chat over /ws/chat/: a session is a ticket with channel "chat"; the
AI answer streams in while it is written (Claude and GPT through their SDKs with HTTP
mocked at the transport, the local provider in one piece); "talk to a human" escalates;
the customer leaves and comes back to the same conversation."""

import itertools

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from automation.models import Rule
from integrations.llm.anthropic import AnthropicProvider
from integrations.llm.openai import OpenAIProvider
from support import realtime, services
from support.ai.pipeline import analyze_ticket
from support.models import Escalation, Ticket
from tests.http_mock import MockRouter
from tests.realtime.conftest import connected, frames_until_quiet, headers, next_of
from tests.realtime.sse import anthropic_tool_stream, openai_json_stream, sse_response

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "/ws/chat/"
QUESTION = "How do I reset my password? I forgot it."


def of_type(frames, kind):
    return [frame for frame in frames if frame["type"] == kind]


def answer_for(article_id: int, text: str) -> dict:
    return {
        "answer": text,
        "cited_article_ids": [article_id],
        "confidence": 0.95,
        "needs_human": False,
        "needs_human_reason": "",
        "clarifying_question": "",
        "reasoning": "The password article answers it.",
        "ticket_type": "account",
        "priority": "normal",
        "sentiment": 0.0,
    }


def test_chat_session_lifecycle_with_escalation(kb, customer, agent):
    as_customer = headers(customer)

    async def scenario():
        async with connected(CHAT, as_customer) as chat:
            await chat.send_json_to({"action": "resume"})
            nothing_yet = await next_of(chat, "chat")
            await chat.send_json_to({"action": "start", "message": QUESTION})
            started = await next_of(chat, "chat")
            ticket = await database_sync_to_async(Ticket.objects.get)(reference=started["ticket"])
            outcome = await database_sync_to_async(analyze_ticket)(ticket.pk)
            answered = await frames_until_quiet(chat)
            await chat.send_json_to({"action": "send", "body": "The reset link has expired."})
            replied = await frames_until_quiet(chat)
            await chat.send_json_to({"action": "human", "reason": "I want a person."})
            handed = await frames_until_quiet(chat)
            await chat.send_json_to({"action": "human"})
            twice = await next_of(chat, "error")
        # The customer leaves, and comes back later (another page, a new socket).
        await database_sync_to_async(services.message_add)(
            ticket=ticket, author=agent, body="Hi, I'm Alex from support: I've sent a new link."
        )
        async with connected(CHAT, as_customer) as chat:
            await chat.send_json_to({"action": "resume"})
            back = await next_of(chat, "chat")
        return nothing_yet, started, outcome, answered, replied, handed, twice, back

    nothing_yet, started, outcome, answered, replied, handed, twice, back = async_to_sync(
        scenario
    )()

    assert nothing_yet == {"type": "chat", "ticket": None, "state": None, "messages": []}
    ticket = Ticket.objects.get(reference=started["ticket"])
    assert ticket.channel == "chat" and ticket.requester == customer
    assert ticket.subject == QUESTION and ticket.description == QUESTION
    assert [m["body"] for m in started["messages"]] == [QUESTION]

    # The local provider's answer arrives in one piece, then as the message itself.
    assert outcome == "resolved"
    (start,) = of_type(answered, "stream.start")
    (delta,) = of_type(answered, "stream.delta")
    (end,) = of_type(answered, "stream.end")
    (message,) = of_type(answered, "message")
    assert start["stream"] == delta["stream"] == end["stream"]
    assert delta["text"] == message["body"] and message["sender"] == "AI assistant"
    assert end["outcome"] == "resolved"
    types = [f["type"] for f in answered]
    assert types.index("stream.start") < types.index("message") < types.index("stream.end")
    assert of_type(answered, "ticket")[-1]["status"] == "resolved"

    # A reply reopens the chat (resolved → new): the customer sees their own message.
    (sent,) = of_type(replied, "sent")
    (mine,) = of_type(replied, "message")
    assert mine["id"] == sent["id"] and mine["sender_kind"] == "customer"
    assert mine["state"]["status"] == "new"

    # "Talk to a human" escalates, once.
    assert of_type(handed, "handed_over") == [{"type": "handed_over", "ticket": ticket.reference}]
    assert of_type(handed, "ticket")[-1]["status_label"] == "With our team"
    escalation = ticket.escalations.get()
    assert escalation.kind == Escalation.Kind.CUSTOMER_REQUESTED
    assert escalation.reason == "I want a person."
    assert twice["code"] == "already_escalated"

    # Back later: the same conversation, with what happened meanwhile.
    assert back["ticket"] == ticket.reference
    bodies = [m["body"] for m in back["messages"]]
    assert bodies[0] == QUESTION and bodies[-1].startswith("Hi, I'm Alex")
    assert back["state"]["status"] == "awaiting_customer"


def test_claude_streams_its_answer_into_the_chat(kb, customer, monkeypatch):
    monkeypatch.setattr(realtime.AnswerStream, "interval", 0)  # every piece, for the test
    article = kb["Reset a forgotten password"]
    result = answer_for(
        article.pk,
        "On the sign-in page choose “Forgot password?”, enter your account's email and "
        "follow the link we send you. It works for 30 minutes.",
    )
    router = MockRouter()
    route = router.post("https://api.anthropic.com/v1/messages").queue(
        sse_response(anthropic_tool_stream(result))
    )
    provider = AnthropicProvider(api_key="sk-test", http_client=router.client())
    frames, ticket = _chat_and_answer(customer, provider)

    assert route.calls[0].json()["stream"] is True
    _assert_streamed(frames, result["answer"])
    ai = ticket.messages.get(sender_kind="ai")
    assert ai.ai_model == "claude-sonnet-4-6" and (ai.input_tokens, ai.output_tokens) == (1450, 210)


def test_gpt_streams_its_answer_into_the_chat(kb, customer, monkeypatch):
    monkeypatch.setattr(realtime.AnswerStream, "interval", 0)
    article = kb["Reset a forgotten password"]
    result = answer_for(
        article.pk, "Choose “Forgot password?” on the sign-in page and follow the emailed link."
    )
    router = MockRouter()
    route = router.post("https://api.openai.com/v1/chat/completions").queue(
        sse_response(openai_json_stream(result))
    )
    provider = OpenAIProvider(api_key="sk-test", http_client=router.client())
    frames, ticket = _chat_and_answer(customer, provider)

    assert route.calls[0].json()["stream_options"] == {"include_usage": True}
    _assert_streamed(frames, result["answer"])
    ai = ticket.messages.get(sender_kind="ai")
    assert ai.ai_model == "gpt-4o-mini-2024-07-18" and ai.output_tokens == 120


def _chat_and_answer(customer, provider):
    as_customer = headers(customer)

    async def scenario():
        async with connected(CHAT, as_customer) as chat:
            await chat.send_json_to({"action": "start", "message": QUESTION})
            started = await next_of(chat, "chat")
            ticket = await database_sync_to_async(Ticket.objects.get)(reference=started["ticket"])
            await database_sync_to_async(analyze_ticket)(ticket.pk, provider=provider)
            return await frames_until_quiet(chat), ticket

    return async_to_sync(scenario)()


def _assert_streamed(frames, answer):
    deltas = [f["text"] for f in of_type(frames, "stream.delta")]
    assert len(deltas) > 5, deltas  # piece by piece
    assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(deltas))
    assert deltas[-1] == answer
    (message,) = of_type(frames, "message")
    assert message["body"].startswith(answer) and message["sender_kind"] == "ai"
    (end,) = of_type(frames, "stream.end")
    assert end["outcome"] in {"resolved", "asked"}
    types = [f["type"] for f in frames]
    assert types.index("stream.start") < types.index("stream.delta") < types.index("message")


def test_a_request_for_people_is_not_streamed(kb, customer):
    # The AI's own always-escalate check (the default rules would escalate it first).
    Rule.objects.filter(is_default=True).update(is_enabled=False)
    as_customer = headers(customer)

    async def scenario():
        async with connected(CHAT, as_customer) as chat:
            await chat.send_json_to(
                {"action": "start", "message": "I was charged twice, please refund me."}
            )
            started = await next_of(chat, "chat")
            ticket = await database_sync_to_async(Ticket.objects.get)(reference=started["ticket"])
            outcome = await database_sync_to_async(analyze_ticket)(ticket.pk)
            return outcome, await frames_until_quiet(chat)

    outcome, frames = async_to_sync(scenario)()

    assert outcome == "escalated"
    assert [f for f in frames if f["type"].startswith("stream.")] == []
    (message,) = of_type(frames, "message")  # the AI's attempt stays internal
    assert message["sender_kind"] == "system"


def test_someone_elses_chat_cannot_be_resumed(customer, other_customer, caplog):
    theirs = services.ticket_open(
        requester=other_customer, subject="Chat", description="Hello", channel="chat"
    )
    as_customer = headers(customer)

    async def scenario():
        async with connected(CHAT, as_customer) as chat:
            await chat.send_json_to({"action": "resume", "ticket": theirs.reference})
            refused = await chat.receive_json_from(timeout=5)
            await chat.send_json_to({"action": "send", "body": "Hi?"})
            return refused, await chat.receive_json_from(timeout=5)

    refused, no_chat = async_to_sync(scenario)()

    assert refused["code"] == "forbidden"
    assert no_chat["code"] == "no_chat"
    assert "subscription refused" in caplog.text
    assert theirs.messages.count() == 1


def test_a_closed_chat_is_not_resumed_and_a_web_ticket_is_no_chat(customer, agent):
    closed = services.ticket_open(
        requester=customer, subject="Old chat", description="Hello", channel="chat"
    )
    services.ticket_close(ticket=closed, actor=agent)
    services.ticket_open(requester=customer, subject="Web", description="From the portal")
    as_customer = headers(customer)

    async def scenario():
        async with connected(CHAT, as_customer) as chat:
            await chat.send_json_to({"action": "resume"})
            return await next_of(chat, "chat")

    assert async_to_sync(scenario)()["ticket"] is None


def test_a_person_can_be_asked_for_after_the_ai_resolved_the_chat(kb, customer):
    as_customer = headers(customer)

    async def scenario():
        async with connected(CHAT, as_customer) as chat:
            await chat.send_json_to({"action": "start", "message": QUESTION})
            started = await next_of(chat, "chat")
            ticket = await database_sync_to_async(Ticket.objects.get)(reference=started["ticket"])
            outcome = await database_sync_to_async(analyze_ticket)(ticket.pk)
            await frames_until_quiet(chat)
            await chat.send_json_to({"action": "human", "reason": "That did not help."})
            return ticket, outcome, await frames_until_quiet(chat)

    ticket, outcome, handed = async_to_sync(scenario)()

    assert outcome == "resolved"
    assert of_type(handed, "handed_over") == [{"type": "handed_over", "ticket": ticket.reference}]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.reopened_count) == ("escalated", 1)
    assert ticket.escalations.get().reason == "That did not help."
    kinds = list(ticket.events.values_list("kind", flat=True))
    assert kinds.index("reopened") < kinds.index("escalated")
