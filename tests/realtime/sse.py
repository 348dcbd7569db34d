"""Server-sent event bodies in the exact shape the Anthropic Messages API and the OpenAI
Chat Completions API stream (``stream: true``), to answer the SDKs' real client code
through tests/http_mock.py.

Anthropic names each event (``event: content_block_delta``) and repeats its type in the
data; a forced tool call arrives as ``input_json_delta`` pieces of the tool's input.
OpenAI sends unnamed ``data:`` lines of ``chat.completion.chunk`` objects, a last chunk
with empty ``choices`` and the usage (``stream_options.include_usage``), then
``data: [DONE]``.
"""

from __future__ import annotations

import json

import httpx2

SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


def pieces(text: str, size: int = 9) -> list[str]:
    """Cut text into token-like pieces (how the models stream JSON)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def anthropic_tool_stream(
    tool_input: dict,
    *,
    tool_name: str = "ticket_answer",
    model: str = "claude-sonnet-4-6",
    input_tokens: int = 1450,
    output_tokens: int = 210,
    fail_after: int | None = None,
) -> str:
    """A Messages stream whose one content block is a forced tool call with
    ``tool_input``; with ``fail_after``, an ``overloaded_error`` event replaces the rest
    after that many input pieces (what the API sends when it is overloaded mid-stream)."""
    body = _event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                },
            },
        },
    )
    body += _event(
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": tool_name,
                "input": {},
            },
        },
    )
    body += _event("ping", {"type": "ping"})
    chunks = ["", *pieces(json.dumps(tool_input, ensure_ascii=False))]
    for number, chunk in enumerate(chunks):
        if fail_after is not None and number == fail_after:
            return body + _event(
                "error",
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            )
        body += _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": chunk},
            },
        )
    body += _event("content_block_stop", {"type": "content_block_stop", "index": 0})
    body += _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    )
    return body + _event("message_stop", {"type": "message_stop"})


def _chunk(choices: list, *, model: str, usage=None) -> str:
    data = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
        "choices": choices,
        "usage": usage,
        "obfuscation": "x1Yz",
    }
    return f"data: {json.dumps(data)}\n\n"


def openai_json_stream(
    result: dict | None,
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    prompt_tokens: int = 980,
    completion_tokens: int = 120,
    refusal: str | None = None,
) -> str:
    """A Chat Completions stream of structured output ``result`` (or of a refusal)."""
    body = _chunk(
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        model=model,
    )
    if refusal is not None:
        for piece in pieces(refusal):
            body += _chunk(
                [
                    {
                        "index": 0,
                        "delta": {"refusal": piece},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                model=model,
            )
    else:
        for piece in pieces(json.dumps(result, ensure_ascii=False)):
            body += _chunk(
                [
                    {
                        "index": 0,
                        "delta": {"content": piece},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
                model=model,
            )
    body += _chunk(
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], model=model
    )
    body += _chunk(
        [],
        model=model,
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    )
    return body + "data: [DONE]\n\n"


def sse_response(body: str):
    """A route answer (tests/http_mock.py) streaming ``body`` as the APIs do."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body.encode("utf-8"), headers=SSE_HEADERS)

    return answer
