"""The tool-use loop (``run_tools``) of Claude and GPT through the real ``anthropic`` and
``openai`` SDK code, HTTP mocked at the transport with the bodies those APIs return; and
the offline provider running the calls a plan prescribes.

What matters to the agent built on it: the model sees each tool's result (or its error)
in the shape its API expects, a run never goes past its step budget, the tokens of every
request are counted, and failures map to the same typed errors as ``complete``."""

import json

import anthropic
import openai
import pytest

from integrations.llm import (
    LLMBadOutput,
    LLMError,
    LLMUnavailable,
    Message,
    Tool,
    ToolCall,
    ToolRun,
)
from integrations.llm.anthropic import AnthropicProvider
from integrations.llm.local import LocalProvider
from integrations.llm.openai import OpenAIProvider, strict_allowed
from support.ai.prompts import ANSWER_SCHEMA, SCHEMA_NAME
from tests.ai.test_providers import (
    ANTHROPIC_URL,
    OPENAI_URL,
    RESULT,
    anthropic_error,
    openai_error,
)
from tests.http_mock import MockRouter

SEARCH = Tool(
    name="search_knowledge_base",
    description="Search the help center; returns the best passages.",
    input_schema={
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
        "additionalProperties": False,
    },
)
ORDER = Tool(
    name="order_status",
    description="The status of one of the customer's orders.",
    input_schema={
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "verbose": {"type": "boolean"}},
        "required": ["order_id"],  # "verbose" is optional: no strict mode for it
    },
)
FOUND = {
    "passages": [
        {
            "article_id": 12,
            "title": "Invite a teammate",
            "text": "Invite a teammate\n\nGo to Settings → Members → Invite.",
            "similarity": 0.81,
        }
    ]
}


# ---- response shapes ---------------------------------------------------------------------


def claude_turn(*tool_uses, text="Let me look that up.", input_tokens=1000, output_tokens=80):
    """A Messages API response (anthropic.types.Message) whose model called tools:
    ``tool_uses`` are ``(id, name, input)``."""
    content = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": id_, "name": name, "input": input_}
        for id_, name, input_ in tool_uses
    ]
    return {
        "id": "msg_01Aq9w938a90dw8q",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": content,
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def gpt_turn(*tool_calls, prompt_tokens=900, completion_tokens=60):
    """A Chat Completions response (openai.types.chat.ChatCompletion) whose model called
    functions: ``tool_calls`` are ``(id, name, arguments)``, arguments a dict (sent as
    JSON text, as the API does) or already a string (to send malformed text)."""
    return {
        "id": "chatcmpl-C3kW1fTz9qV0l8sKpY2mX7aBnR4dE",
        "object": "chat.completion",
        "created": 1754000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "annotations": [],
                    "tool_calls": [
                        {
                            "id": id_,
                            "type": "function",
                            "function": {
                                "name": name,
                                "arguments": args if isinstance(args, str) else json.dumps(args),
                            },
                        }
                        for id_, name, args in tool_calls
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


def test_the_shapes_are_what_the_sdks_parse():
    message = anthropic.types.Message.model_validate(
        claude_turn(("toolu_01", "search_knowledge_base", {"query": "invite"}))
    )
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[1].input == {"query": "invite"}
    completion = openai.types.chat.ChatCompletion.model_validate(
        gpt_turn(("call_01", "search_knowledge_base", {"query": "invite"}))
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.type == "function" and json.loads(call.function.arguments) == {"query": "invite"}


# ---- helpers -----------------------------------------------------------------------------


@pytest.fixture
def router():
    return MockRouter()


def claude(router, **kwargs):
    return AnthropicProvider(api_key="sk-test", http_client=router.client(), **kwargs)


def gpt(router, **kwargs):
    return OpenAIProvider(api_key="sk-test", http_client=router.client(), **kwargs)


class Executor:
    """The caller's side: runs the tools and remembers what it was asked."""

    def __init__(self, results=None, fail=None):
        self.results = results or {}
        self.fail = fail or {}
        self.seen: list[ToolCall] = []

    def __call__(self, call: ToolCall) -> dict:
        self.seen.append(call)
        if call.name in self.fail:
            raise self.fail[call.name]
        return self.results.get(call.name, {"ok": True})


def run(provider, execute, *, tools=(SEARCH,), **kwargs) -> ToolRun:
    return provider.run_tools(
        system="You are support.",
        messages=[Message("user", "How do I invite a teammate?")],
        tools=list(tools),
        execute=execute,
        schema=ANSWER_SCHEMA,
        schema_name=SCHEMA_NAME,
        **kwargs,
    )


# ---- Anthropic ---------------------------------------------------------------------------


def test_claude_searches_then_answers_with_the_results_in_a_tool_result(router):
    route = router.post(ANTHROPIC_URL).queue(
        (200, claude_turn(("toolu_01", "search_knowledge_base", {"query": "invite teammate"}))),
        (200, claude_turn(("toolu_02", SCHEMA_NAME, RESULT), input_tokens=1500, text="")),
    )
    execute = Executor({"search_knowledge_base": FOUND})

    result = run(claude(router), execute)

    assert result.completion.data == RESULT
    assert (result.completion.input_tokens, result.completion.output_tokens) == (2500, 160)
    assert result.completion.provider == "anthropic"
    assert (result.steps, result.stopped) == (2, "answered")
    assert execute.seen == [
        ToolCall("toolu_01", "search_knowledge_base", {"query": "invite teammate"})
    ]
    [record] = result.calls
    assert {k: record[k] for k in ("step", "id", "name", "arguments", "result")} == {
        "step": 1,
        "id": "toolu_01",
        "name": "search_knowledge_base",
        "arguments": {"query": "invite teammate"},
        "result": FOUND,
    }
    assert "error" not in record and record["ms"] >= 0
    first, second = (call.json() for call in route.calls)
    assert first["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in first["tools"]] == ["search_knowledge_base", SCHEMA_NAME]
    assert first["tools"][0] == {
        "name": "search_knowledge_base",
        "description": SEARCH.description,
        "input_schema": SEARCH.input_schema,
    }
    assert first["tools"][1]["input_schema"]["required"] == ANSWER_SCHEMA["required"]
    # The assistant's turn goes back as returned, then one user turn with the results.
    assert second["messages"][0] == {"role": "user", "content": "How do I invite a teammate?"}
    assert second["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look that up."},
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "search_knowledge_base",
                "input": {"query": "invite teammate"},
            },
        ],
    }
    [block] = second["messages"][2]["content"]
    assert second["messages"][2]["role"] == "user"
    assert block["type"] == "tool_result" and block["tool_use_id"] == "toolu_01"
    assert block["is_error"] is False and json.loads(block["content"]) == FOUND


def test_claude_is_made_to_answer_at_the_step_limit(router):
    route = router.post(ANTHROPIC_URL).queue(
        (200, claude_turn(("toolu_01", "search_knowledge_base", {"query": "invite"}))),
        (200, claude_turn(("toolu_02", "search_knowledge_base", {"query": "members"}))),
        (200, claude_turn(("toolu_03", SCHEMA_NAME, RESULT))),
    )

    result = run(claude(router), Executor({"search_knowledge_base": FOUND}), max_steps=3)

    choices = [call.json()["tool_choice"] for call in route.calls]
    assert choices == [{"type": "any"}, {"type": "any"}, {"type": "tool", "name": SCHEMA_NAME}]
    assert (result.steps, result.stopped) == (3, "step_limit")
    assert [r["step"] for r in result.calls] == [1, 2]
    assert result.completion.input_tokens == 3000


def test_claude_hears_of_a_failing_tool_and_goes_on(router):
    route = router.post(ANTHROPIC_URL).queue(
        (200, claude_turn(("toolu_01", "search_knowledge_base", {"query": "invite"}))),
        (200, claude_turn(("toolu_02", SCHEMA_NAME, RESULT))),
    )
    execute = Executor(fail={"search_knowledge_base": RuntimeError("search index is down")})

    result = run(claude(router), execute)

    [block] = route.calls[1].json()["messages"][2]["content"]
    assert block == {
        "type": "tool_result",
        "tool_use_id": "toolu_01",
        "content": "search index is down",
        "is_error": True,
    }
    assert result.calls[0]["error"] == "search index is down"
    assert result.calls[0]["result"] is None
    assert result.completion.data == RESULT


def test_claude_calling_an_unknown_tool_gets_an_error_not_an_execution(router):
    route = router.post(ANTHROPIC_URL).queue(
        (200, claude_turn(("toolu_01", "close_all_tickets", {}))),
        (200, claude_turn(("toolu_02", SCHEMA_NAME, RESULT))),
    )
    execute = Executor()

    result = run(claude(router), execute)

    assert execute.seen == []
    [block] = route.calls[1].json()["messages"][2]["content"]
    assert block["is_error"] is True and "unknown tool 'close_all_tickets'" in block["content"]
    assert result.calls[0]["error"] == "unknown tool 'close_all_tickets'"


def test_claude_other_calls_beside_the_answer_run_first(router):
    router.post(ANTHROPIC_URL).respond(
        200,
        json=claude_turn(
            ("toolu_01", "search_knowledge_base", {"query": "invite"}),
            ("toolu_02", SCHEMA_NAME, RESULT),
        ),
    )
    execute = Executor({"search_knowledge_base": FOUND})

    result = run(claude(router), execute)

    assert [c.id for c in execute.seen] == ["toolu_01"]
    assert (result.steps, result.stopped, len(result.calls)) == (1, "answered", 1)


def test_claude_incomplete_answer_is_asked_again_once_then_refused(router):
    route = router.post(ANTHROPIC_URL).queue(
        (200, claude_turn(("toolu_01", SCHEMA_NAME, {"answer": "only this"}))),
        (200, claude_turn(("toolu_02", SCHEMA_NAME, {"answer": "still only this"}))),
    )

    with pytest.raises(LLMBadOutput, match="missing keys"):
        run(claude(router), Executor())

    retry = route.calls[1].json()
    assert retry["tool_choice"] == {"type": "tool", "name": SCHEMA_NAME}
    [block] = retry["messages"][2]["content"]
    assert block["tool_use_id"] == "toolu_01" and block["is_error"] is True
    assert "missing keys" in block["content"]


def test_claude_incomplete_then_complete_answer(router):
    router.post(ANTHROPIC_URL).queue(
        (200, claude_turn(("toolu_01", SCHEMA_NAME, {"answer": "only this"}))),
        (200, claude_turn(("toolu_02", SCHEMA_NAME, RESULT))),
    )

    result = run(claude(router), Executor())

    assert result.completion.data == RESULT and result.steps == 2


def test_claude_429_then_success_mid_run(router):
    route = router.post(ANTHROPIC_URL).queue(
        (200, claude_turn(("toolu_01", "search_knowledge_base", {"query": "invite"}))),
        (
            429,
            anthropic_error(429, "rate_limit_error", "Number of requests has exceeded"),
            {"retry-after": "0"},
        ),
        (200, claude_turn(("toolu_02", SCHEMA_NAME, RESULT))),
    )

    result = run(claude(router, max_retries=2), Executor({"search_knowledge_base": FOUND}))

    assert result.completion.data == RESULT and result.steps == 2
    assert route.call_count == 3


def test_claude_500s_are_unavailable(router):
    route = router.post(ANTHROPIC_URL).respond(
        500,
        json=anthropic_error(500, "api_error", "Internal server error"),
        headers={"retry-after": "0"},
    )

    with pytest.raises(LLMUnavailable):
        run(claude(router, max_retries=1), Executor())
    assert route.call_count == 2


def test_claude_bad_key_is_not_unavailable(router):
    router.post(ANTHROPIC_URL).respond(
        401, json=anthropic_error(401, "authentication_error", "invalid x-api-key")
    )

    with pytest.raises(LLMError) as error:
        run(claude(router), Executor())
    assert not isinstance(error.value, LLMUnavailable)


# ---- OpenAI ------------------------------------------------------------------------------


def test_gpt_searches_then_answers_with_the_results_in_tool_messages(router):
    route = router.post(OPENAI_URL).queue(
        (200, gpt_turn(("call_01", "search_knowledge_base", {"query": "invite teammate"}))),
        (200, gpt_turn(("call_02", SCHEMA_NAME, RESULT), prompt_tokens=1300)),
    )
    execute = Executor({"search_knowledge_base": FOUND})

    result = run(gpt(router), execute)

    assert result.completion.data == RESULT
    assert (result.completion.input_tokens, result.completion.output_tokens) == (2200, 120)
    assert result.completion.provider == "openai"
    assert json.loads(result.completion.raw_text) == RESULT
    assert (result.steps, result.stopped) == (2, "answered")
    assert result.calls[0]["result"] == FOUND and result.calls[0]["id"] == "call_01"
    first, second = (call.json() for call in route.calls)
    assert first["tool_choice"] == "required"
    assert "parallel_tool_calls" not in first
    assert first["tools"][0] == {
        "type": "function",
        "function": {
            "name": "search_knowledge_base",
            "description": SEARCH.description,
            "parameters": SEARCH.input_schema,
            "strict": True,
        },
    }
    assert first["tools"][1]["function"]["name"] == SCHEMA_NAME
    assert first["tools"][1]["function"]["strict"] is True
    assert second["messages"][:2] == [
        {"role": "system", "content": "You are support."},
        {"role": "user", "content": "How do I invite a teammate?"},
    ]
    assert second["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_01",
                "type": "function",
                "function": {
                    "name": "search_knowledge_base",
                    "arguments": json.dumps({"query": "invite teammate"}),
                },
            }
        ],
    }
    tool_message = second["messages"][3]
    assert (tool_message["role"], tool_message["tool_call_id"]) == ("tool", "call_01")
    assert json.loads(tool_message["content"]) == FOUND


def test_gpt_is_made_to_answer_at_the_step_limit(router):
    route = router.post(OPENAI_URL).queue(
        (200, gpt_turn(("call_01", "search_knowledge_base", {"query": "invite"}))),
        (200, gpt_turn(("call_02", SCHEMA_NAME, RESULT))),
    )

    result = run(gpt(router), Executor({"search_knowledge_base": FOUND}), max_steps=2)

    choices = [call.json()["tool_choice"] for call in route.calls]
    assert choices == ["required", {"type": "function", "function": {"name": SCHEMA_NAME}}]
    assert (result.steps, result.stopped) == (2, "step_limit")


def test_gpt_hears_of_failing_unknown_and_malformed_calls_and_goes_on(router):
    route = router.post(OPENAI_URL).queue(
        (
            200,
            gpt_turn(
                ("call_01", "search_knowledge_base", {"query": "invite"}),
                ("call_02", "close_all_tickets", {}),
                ("call_03", "search_knowledge_base", '{"query": "inv'),
            ),
        ),
        (200, gpt_turn(("call_04", SCHEMA_NAME, RESULT))),
    )
    execute = Executor(fail={"search_knowledge_base": TimeoutError("search timed out")})

    result = run(gpt(router), execute)

    assert [c.id for c in execute.seen] == ["call_01"]  # neither unknown nor malformed ran
    answers = {
        m["tool_call_id"]: json.loads(m["content"])
        for m in route.calls[1].json()["messages"]
        if m["role"] == "tool"
    }
    assert answers["call_01"] == {"error": "search timed out"}
    assert answers["call_02"] == {"error": "unknown tool 'close_all_tickets'"}
    assert answers["call_03"]["error"].startswith("arguments are not JSON")
    assert [r["step"] for r in result.calls] == [1, 1, 1]
    assert all(r["error"] for r in result.calls)
    assert result.completion.data == RESULT


def test_gpt_malformed_answer_is_asked_again_then_refused(router):
    route = router.post(OPENAI_URL).respond(
        200, json=gpt_turn(("call_01", SCHEMA_NAME, '{"answer": "unfinish'))
    )

    with pytest.raises(LLMBadOutput, match="not JSON"):
        run(gpt(router), Executor())
    assert route.call_count == 2
    assert route.calls[1].json()["tool_choice"]["function"]["name"] == SCHEMA_NAME


def test_gpt_429_then_success(router):
    route = router.post(OPENAI_URL).queue(
        (
            429,
            openai_error("Rate limit reached for gpt-4o-mini", "requests", "rate_limit_exceeded"),
            {"retry-after": "0"},
        ),
        (200, gpt_turn(("call_01", SCHEMA_NAME, RESULT))),
    )

    result = run(gpt(router, max_retries=2), Executor())

    assert result.completion.data == RESULT and route.call_count == 2


def test_gpt_500s_mid_run_are_unavailable(router):
    route = router.post(OPENAI_URL).queue(
        (200, gpt_turn(("call_01", "search_knowledge_base", {"query": "invite"}))),
        (500, openai_error("The server had an error", "server_error"), {"retry-after": "0"}),
        (500, openai_error("The server had an error", "server_error"), {"retry-after": "0"}),
    )

    with pytest.raises(LLMUnavailable):
        run(gpt(router, max_retries=1), Executor({"search_knowledge_base": FOUND}))
    assert route.call_count == 3


def test_gpt_strict_only_where_the_schema_allows_it(router):
    nested_open = Tool(
        name="update_profile",
        description="Change the customer's profile.",
        input_schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["profile"],
            "properties": {
                "profile": {  # closed, but "phone" is not required
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "phone": {"type": "string"}},
                }
            },
        },
    )
    route = router.post(OPENAI_URL).respond(200, json=gpt_turn(("call_01", SCHEMA_NAME, RESULT)))

    run(gpt(router), Executor(), tools=(SEARCH, ORDER, nested_open))

    strict = {
        t["function"]["name"]: t["function"]["strict"] for t in route.calls[0].json()["tools"]
    }
    assert strict == {
        "search_knowledge_base": True,
        "order_status": False,  # optional property, no additionalProperties: false
        "update_profile": False,  # the nested object leaves a property optional
        SCHEMA_NAME: True,
    }
    open_result = {k: v for k, v in ANSWER_SCHEMA.items() if k != "additionalProperties"}
    assert strict_allowed(open_result) is False
    items = {
        "type": "object",
        "additionalProperties": False,
        "required": ["lines"],
        "properties": {"lines": {"type": "array", "items": {"type": "object"}}},
    }
    assert strict_allowed(items) is False  # an object inside an array counts too


# ---- the offline provider ----------------------------------------------------------------


def passage(article_id, similarity, *, title=None, language=None, language_name=None):
    title = title or f"Article {article_id}"
    found = {
        "article_id": article_id,
        "title": title,
        "text": f"{title}\n\nThe steps of article {article_id}.",
        "similarity": similarity,
        "url": f"https://help.example.com/help/{article_id}/",
        "strength": round(similarity, 3),
    }
    if language:
        found |= {"language": language, "language_name": language_name}
    return found


def local_context(**extra):
    return {
        "passages": [passage(1, 0.40), passage(2, 0.55)],
        "thresholds": {"min_similarity": 0.3, "confident_at": 0.85},
        "triage": {"ticket_type": "account", "priority": "normal", "sentiment": 0.0},
        **extra,
    }


def local_run(execute, context):
    return run(LocalProvider(), execute, tools=(SEARCH, ORDER), context=context)


def test_local_runs_the_plan_and_answers_from_the_merged_passages():
    search_result = {"passages": [passage(3, 0.9, title="Invite a teammate"), passage(2, 0.5)]}
    execute = Executor({"search_knowledge_base": search_result, "order_status": {"state": "sent"}})
    plan = [
        {"name": "order_status", "arguments": {"order_id": "A-7"}},
        {"name": "search_knowledge_base", "arguments": {"query": "invite teammate"}},
    ]

    result = local_run(execute, local_context(tool_plan=plan))

    assert [(r["id"], r["step"], r["name"]) for r in result.calls] == [
        ("local-1", 1, "order_status"),
        ("local-2", 2, "search_knowledge_base"),
    ]
    assert result.calls[0]["result"] == {"state": "sent"}
    assert execute.seen[1] == ToolCall(
        "local-2", "search_knowledge_base", {"query": "invite teammate"}
    )
    assert (result.steps, result.stopped) == (3, "answered")
    data = result.completion.data
    assert data["cited_article_ids"] == [3]  # found by the search, better than the given ones
    assert "Invite a teammate" in data["answer"]
    assert result.completion.provider == "local"


def test_local_merge_keeps_the_best_passage_per_article():
    # Article 2 comes back from the search weaker than given, and stronger as article 1:
    # per article the strongest stays, so article 1's new passage wins the answer.
    search_result = {"passages": [passage(2, 0.45), passage(1, 0.7, title="Reset a password")]}
    context = local_context(tool_plan=[{"name": "search_knowledge_base", "arguments": {}}])
    seen = []

    class Spy(LocalProvider):
        def _answer(self, context):
            seen.append(sorted((p["article_id"], p["similarity"]) for p in context["passages"]))
            return super()._answer(context)

    result = run(
        Spy(),
        Executor({"search_knowledge_base": search_result}),
        tools=(SEARCH,),
        context=context,
    )

    assert seen == [[(1, 0.7), (2, 0.55)]]
    assert result.completion.data["cited_article_ids"] == [1]


def test_local_without_a_plan_answers_as_complete_does():
    execute = Executor()

    result = local_run(execute, local_context())

    plain = LocalProvider().complete(
        system="s",
        messages=[],
        schema=ANSWER_SCHEMA,
        schema_name=SCHEMA_NAME,
        context=local_context(),
    )
    assert execute.seen == [] and result.calls == []
    assert (result.steps, result.stopped) == (1, "answered")
    assert result.completion.data == plain.data


def test_local_failing_or_unknown_planned_calls_are_recorded_and_the_answer_still_comes():
    execute = Executor(fail={"search_knowledge_base": ConnectionError("index offline")})
    plan = [
        {"name": "search_knowledge_base", "arguments": {"query": "x"}},
        {"name": "refund_everything", "arguments": {}},
    ]

    result = local_run(execute, local_context(tool_plan=plan))

    assert [r["error"] for r in result.calls] == [
        "index offline",
        "unknown tool 'refund_everything'",
    ]
    assert [c.name for c in execute.seen] == ["search_knowledge_base"]
    assert result.completion.data["cited_article_ids"] == [2]


def test_local_says_when_the_answer_is_not_in_the_customers_language():
    german = {"customer": "de", "customer_name": "German"}
    english = passage(3, 0.9, title="Invite a teammate", language="en", language_name="English")
    plan = [{"name": "search_knowledge_base", "arguments": {"query": "Teammitglied einladen"}}]
    execute = Executor({"search_knowledge_base": {"passages": [english]}})

    data = local_run(execute, local_context(tool_plan=plan, language=german)).completion.data

    first_line, rest = data["answer"].split("\n", 1)
    assert first_line == (
        "(This answer comes from our English help center; it is not available in German yet.)"
    )
    assert "Invite a teammate" in rest
    assert "English" in data["reasoning"] and "German" in data["reasoning"]


def test_local_same_language_or_none_known_leaves_the_answer_as_it_was():
    english = passage(3, 0.9, title="Invite a teammate", language="en", language_name="English")
    plan = [{"name": "search_knowledge_base", "arguments": {}}]
    execute = Executor({"search_knowledge_base": {"passages": [english]}})
    same = local_context(tool_plan=plan, language={"customer": "en", "customer_name": "English"})

    with_language = local_run(execute, same).completion.data
    without = local_run(execute, local_context(tool_plan=plan)).completion.data

    assert with_language == without
    assert with_language["answer"].startswith("Here is what our help center says")


def test_tool_names_are_checked():
    with pytest.raises(ValueError, match="tool name"):
        Tool(name="search the kb", description="", input_schema={"type": "object"})
