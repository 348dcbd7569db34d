"""Claude and GPT through the real ``anthropic`` and ``openai`` SDK code; HTTP mocked at
the transport (tests/http_mock.py), with the bodies those APIs return."""

import json
from decimal import Decimal

import httpx2
import pytest

from integrations.llm import LLMBadOutput, LLMError, LLMUnavailable, Message, cost_usd
from integrations.llm.anthropic import AnthropicProvider
from integrations.llm.openai import OpenAIProvider
from support.ai.prompts import ANSWER_SCHEMA, SCHEMA_NAME
from tests.http_mock import MockRouter

ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"
OPENAI_URL = "https://api.openai.com/v1/chat/completions"

RESULT = {
    "answer": "Go to Settings → Members → Invite.",
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


def anthropic_message(tool_input, *, model="claude-sonnet-4-6", text_only=False):
    # The shape of a Messages API response (anthropic.types.Message) with a tool_use block.
    content = [{"type": "text", "text": "Let me answer."}]
    if not text_only:
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": SCHEMA_NAME,
                "input": tool_input,
            }
        )
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if not text_only else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 1450,
            "output_tokens": 210,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def anthropic_error(status, type_, message):
    return {"type": "error", "error": {"type": type_, "message": message}}


def openai_completion(content, *, refusal=None, model="gpt-4o-mini-2024-07-18"):
    # The shape of a Chat Completions response (openai.types.chat.ChatCompletion).
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "annotations": [],
                },
            }
        ],
        "usage": {"prompt_tokens": 980, "completion_tokens": 120, "total_tokens": 1100},
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


def openai_error(message, type_, code=None):
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def ask(provider):
    return provider.complete(
        system="You are support.",
        schema=ANSWER_SCHEMA,
        schema_name=SCHEMA_NAME,
        messages=[Message("user", "How do I invite a teammate?")],
    )


@pytest.fixture
def router():
    return MockRouter()


def claude(router, **kwargs):
    return AnthropicProvider(api_key="sk-test", http_client=router.client(), **kwargs)


def gpt(router, **kwargs):
    return OpenAIProvider(api_key="sk-test", http_client=router.client(), **kwargs)


# ---- Anthropic --------------------------------------------------------------------------


def test_claude_structured_answer_through_a_forced_tool_call(router):
    route = router.post(ANTHROPIC_URL).respond(200, json=anthropic_message(RESULT))

    completion = ask(claude(router))

    sent = route.calls[0].json()
    assert sent["tool_choice"] == {"type": "tool", "name": SCHEMA_NAME}
    assert sent["tools"][0]["input_schema"]["required"] == ANSWER_SCHEMA["required"]
    assert sent["system"] == "You are support." and sent["model"] == "claude-sonnet-4-6"
    headers = route.calls[0].request.headers
    assert "sk-test" in (headers.get("x-api-key", "") + headers.get("authorization", ""))
    assert completion.data == RESULT
    assert (completion.input_tokens, completion.output_tokens) == (1450, 210)
    assert completion.model == "claude-sonnet-4-6"
    assert cost_usd(completion.model, 1450, 210) == Decimal("0.007500")


def test_claude_429_with_retry_after_then_success(router):
    route = router.post(ANTHROPIC_URL).queue(
        (
            429,
            anthropic_error(429, "rate_limit_error", "Number of requests has exceeded"),
            {"retry-after": "0"},
        ),
        (200, anthropic_message(RESULT)),
    )

    assert ask(claude(router, max_retries=2)).data == RESULT
    assert route.call_count == 2


def test_claude_500_then_success(router):
    route = router.post(ANTHROPIC_URL).queue(
        (500, anthropic_error(500, "api_error", "Internal server error"), {"retry-after": "0"}),
        (200, anthropic_message(RESULT)),
    )

    assert ask(claude(router, max_retries=2)).data == RESULT
    assert route.call_count == 2


def test_claude_overloaded_after_retries_is_unavailable(router):
    route = router.post(ANTHROPIC_URL).respond(
        529,
        json=anthropic_error(529, "overloaded_error", "Overloaded"),
        headers={"retry-after": "0"},
    )

    with pytest.raises(LLMUnavailable):
        ask(claude(router, max_retries=1))
    assert route.call_count == 2


def test_claude_malformed_output_is_retried_once_then_refused(router):
    route = router.post(ANTHROPIC_URL).queue(
        (200, anthropic_message({"answer": "missing the other keys"})),
        (200, anthropic_message({}, text_only=True)),
    )

    with pytest.raises(LLMBadOutput, match="did not call the result tool"):
        ask(claude(router))
    assert route.call_count == 2


def test_claude_malformed_then_good(router):
    router.post(ANTHROPIC_URL).queue(
        (200, anthropic_message({"answer": "x"})), (200, anthropic_message(RESULT))
    )

    assert ask(claude(router)).data == RESULT


def test_claude_timeout_is_unavailable(router):
    route = router.post(ANTHROPIC_URL).queue(
        httpx2.ReadTimeout("timed out"), httpx2.ReadTimeout("timed out")
    )

    with pytest.raises(LLMUnavailable, match="unavailable"):
        ask(claude(router, max_retries=1))
    assert route.call_count == 2


def test_claude_bad_key_is_a_configuration_error_not_retried(router):
    route = router.post(ANTHROPIC_URL).respond(
        401, json=anthropic_error(401, "authentication_error", "invalid x-api-key")
    )

    with pytest.raises(LLMError) as error:
        ask(claude(router, max_retries=3))
    assert not isinstance(error.value, LLMUnavailable)
    assert route.call_count == 1


# ---- OpenAI -----------------------------------------------------------------------------


def test_gpt_structured_outputs_with_a_strict_schema(router):
    route = router.post(OPENAI_URL).respond(200, json=openai_completion(json.dumps(RESULT)))

    completion = ask(gpt(router))

    sent = route.calls[0].json()
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["response_format"]["json_schema"]["schema"]["additionalProperties"] is False
    assert sent["messages"][0] == {"role": "system", "content": "You are support."}
    assert completion.data == RESULT
    assert (completion.input_tokens, completion.output_tokens) == (980, 120)
    assert cost_usd(completion.model, 980, 120) == Decimal("0.000219")


def test_gpt_429_with_retry_after_then_success(router):
    route = router.post(OPENAI_URL).queue(
        (
            429,
            openai_error("Rate limit reached for gpt-4o-mini", "requests", "rate_limit_exceeded"),
            {"retry-after": "0"},
        ),
        (200, openai_completion(json.dumps(RESULT))),
    )

    assert ask(gpt(router, max_retries=2)).data == RESULT
    assert route.call_count == 2


def test_gpt_500_then_success(router):
    route = router.post(OPENAI_URL).queue(
        (500, openai_error("The server had an error", "server_error"), {"retry-after": "0"}),
        (200, openai_completion(json.dumps(RESULT))),
    )

    assert ask(gpt(router, max_retries=1)).data == RESULT
    assert route.call_count == 2


def test_gpt_malformed_json_is_retried_then_refused(router):
    route = router.post(OPENAI_URL).respond(200, json=openai_completion('{"answer": "unfinish'))

    with pytest.raises(LLMBadOutput, match="not JSON"):
        ask(gpt(router))
    assert route.call_count == 2


def test_gpt_refusal_is_bad_output(router):
    router.post(OPENAI_URL).respond(200, json=openai_completion(None, refusal="I can't help."))

    with pytest.raises(LLMBadOutput, match="refused"):
        ask(gpt(router))


def test_gpt_timeout_is_unavailable(router):
    router.post(OPENAI_URL).queue(
        httpx2.ConnectTimeout("timed out"), httpx2.ConnectTimeout("timed out")
    )

    with pytest.raises(LLMUnavailable):
        ask(gpt(router, max_retries=1))


def test_providers_need_their_key(settings):
    settings.ANTHROPIC_API_KEY = settings.OPENAI_API_KEY = ""

    with pytest.raises(LLMError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider.from_settings()
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        OpenAIProvider.from_settings()


def test_unknown_models_cost_nothing_and_snapshots_cost_their_family():
    assert cost_usd("claude-haiku-4-5-20251001", 1_000_000, 0) == Decimal("1.000000")
    assert cost_usd("some-new-model", 1000, 1000) == Decimal("0")
