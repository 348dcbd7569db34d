"""Streamed answers through the real ``anthropic`` and ``openai`` SDK code (HTTP mocked at
the transport, SSE bodies in the APIs' own shape): the caller sees the structured result
grow, and gets the same Completion as without streaming."""

import itertools
import json

import pytest

from integrations.llm import LLMBadOutput, LLMUnavailable, Message
from integrations.llm.anthropic import AnthropicProvider
from integrations.llm.base import parse_partial
from integrations.llm.local import LocalProvider
from integrations.llm.openai import OpenAIProvider
from support.ai.prompts import ANSWER_SCHEMA, SCHEMA_NAME
from tests.http_mock import MockRouter
from tests.realtime.sse import anthropic_tool_stream, openai_json_stream, sse_response

ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
OPENAI_URL = "https://api.openai.com/v1/chat/completions"

RESULT = {
    "answer": 'Go to Settings → Members → Invite, and type their "work" email.\nThat is all.',
    "cited_article_ids": [12],
    "confidence": 0.92,
    "needs_human": False,
    "needs_human_reason": "",
    "clarifying_question": "",
    "reasoning": "The invite article covers it.",
    "ticket_type": "account",
    "priority": "normal",
    "sentiment": 0.2,
}


def ask(provider, seen):
    return provider.complete(
        system="You are support.",
        schema=ANSWER_SCHEMA,
        schema_name=SCHEMA_NAME,
        messages=[Message("user", "How do I invite a teammate?")],
        on_partial=lambda partial: seen.append(dict(partial)),
    )


def answers(seen) -> list[str]:
    return [p["answer"] for p in seen if "answer" in p]


def assert_grows_to_the_answer(seen):
    texts = answers(seen)
    assert len(texts) > 5  # piece by piece, not in one go
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert texts[0] != texts[-1] and texts[-1] == RESULT["answer"]
    assert seen[-1] == RESULT


@pytest.fixture
def router():
    return MockRouter()


def test_claude_streams_the_tool_input_as_it_is_written(router):
    route = router.post(ANTHROPIC_URL).queue(sse_response(anthropic_tool_stream(RESULT)))
    seen = []

    completion = ask(AnthropicProvider(api_key="sk-test", http_client=router.client()), seen)

    sent = route.calls[0].json()
    assert sent["stream"] is True
    assert sent["tool_choice"] == {"type": "tool", "name": SCHEMA_NAME}
    assert_grows_to_the_answer(seen)
    assert completion.data == RESULT
    assert (completion.input_tokens, completion.output_tokens) == (1450, 210)
    assert completion.model == "claude-sonnet-4-6" and completion.provider == "anthropic"


def test_claude_overloaded_mid_stream_is_unavailable(router):
    router.post(ANTHROPIC_URL).queue(sse_response(anthropic_tool_stream(RESULT, fail_after=4)))
    seen = []

    with pytest.raises(LLMUnavailable, match="unavailable"):
        ask(AnthropicProvider(api_key="sk-test", http_client=router.client()), seen)
    assert answers(seen)  # part of the answer had been seen before the error


def test_claude_stream_with_an_incomplete_tool_input_is_retried_once(router):
    cut = {"answer": "Half an answer"}  # the required keys are missing
    route = router.post(ANTHROPIC_URL).queue(
        sse_response(anthropic_tool_stream(cut)), sse_response(anthropic_tool_stream(RESULT))
    )
    seen = []

    completion = ask(AnthropicProvider(api_key="sk-test", http_client=router.client()), seen)

    assert route.call_count == 2 and completion.data == RESULT


def test_gpt_streams_structured_output_with_usage_at_the_end(router):
    route = router.post(OPENAI_URL).queue(sse_response(openai_json_stream(RESULT)))
    seen = []

    completion = ask(OpenAIProvider(api_key="sk-test", http_client=router.client()), seen)

    sent = route.calls[0].json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert_grows_to_the_answer(seen)
    assert completion.data == RESULT and json.loads(completion.raw_text) == RESULT
    assert (completion.input_tokens, completion.output_tokens) == (980, 120)
    assert completion.model == "gpt-4o-mini-2024-07-18"


def test_gpt_streamed_refusal_is_bad_output(router):
    refusal = sse_response(openai_json_stream(None, refusal="I can't help with that."))
    route = router.post(OPENAI_URL).queue(refusal, refusal)

    with pytest.raises(LLMBadOutput, match="refused: I can't help with that"):
        ask(OpenAIProvider(api_key="sk-test", http_client=router.client()), [])
    assert route.call_count == 2


def test_the_local_provider_hands_its_answer_over_in_one_piece():
    seen = []
    passage = {
        "article_id": 7,
        "title": "Invite teammates",
        "text": "Invite teammates\n\nGo to Settings → Members → Invite.",
        "similarity": 0.9,
        "url": "http://localhost:8000/help/a/invite/",
    }
    completion = LocalProvider().complete(
        system="",
        messages=[],
        schema=ANSWER_SCHEMA,
        schema_name=SCHEMA_NAME,
        context={"passages": [passage], "triage": {}},
        on_partial=seen.append,
    )

    assert seen == [completion.data]
    assert "Settings → Members → Invite" in seen[0]["answer"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("{", {}),
        ('{"answer": "Go to Se', {"answer": "Go to Se"}),
        ('{"answer": "caf\\u00e9 \\"x\\"", "cited_article_ids": [1,', None),
        ('{"answer": "a\\', {"answer": "a"}),
        ("[1, 2", None),
        ("not json", None),
    ],
)
def test_partial_json_keeps_the_string_being_written(text, expected):
    if text.startswith('{"answer": "caf'):
        assert parse_partial(text) == {"answer": 'café "x"', "cited_article_ids": [1]}
    else:
        assert parse_partial(text) == expected
