from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Called with the structured result parsed so far while a provider streams it.
PartialCallback = Callable[[dict[str, Any]], None]


class LLMError(Exception):
    """The provider cannot be used (bad configuration, bad credentials)."""


class LLMUnavailable(LLMError):
    """Rate limited, overloaded, timing out or unreachable, after the retries."""


class LLMBadOutput(LLMError):
    """The model answered, but not in the requested shape (after a retry)."""


@dataclass(frozen=True)
class Message:
    role: str  # "user" or "assistant"
    content: str


@dataclass
class Completion:
    data: dict[str, Any]  # the structured result, validated against the schema's keys
    model: str
    provider: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    raw_text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


#: What both APIs accept as a tool (function) name.
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Tool:
    """A tool the model may call during ``run_tools``; what it does is the caller's
    ``execute`` (the provider only carries the call and its result)."""

    name: str  # ^[a-zA-Z0-9_-]{1,64}$
    description: str
    input_schema: dict  # a JSON Schema object: {"type": "object", "properties": …}

    def __post_init__(self):
        if not TOOL_NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must match {TOOL_NAME.pattern}")


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict


@dataclass
class ToolRun:
    """What a ``run_tools`` run did.

    ``completion``: the final structured result (the input of the result tool), tokens
    summed over every request of the run, ``latency_ms`` the whole run's.
    ``calls``: one record per tool call the model made (other than the result tool), in
    order: ``{"step", "id", "name", "arguments", "result", "ms"}``, ``step`` being the
    1-based number of the request that asked for it, plus ``"error"`` (and ``result``
    None) when ``execute`` raised, the tool is unknown or its arguments are not JSON.
    ``steps``: model requests made.
    ``stopped``: ``"answered"`` when the model called the result tool by itself (or, after
    an unusable answer, was asked again before the limit), ``"step_limit"`` when the
    request at ``max_steps`` (or the one retry after it) had to force it.
    """

    completion: Completion
    calls: list[dict]
    steps: int
    stopped: str  # "answered" or "step_limit"


class LLMProvider(Protocol):
    name: str
    model: str

    def complete(
        self,
        *,
        system: str,
        messages: list[Message],
        schema: dict,
        schema_name: str,
        context: dict | None = None,
        max_tokens: int = 1024,
        on_partial: PartialCallback | None = None,
    ) -> Completion:
        """Ask for one structured result. ``context`` carries the same retrieved data the
        messages quote, for providers that work on data rather than text (local), with
        what the caller decided about it (retrieval strengths, thresholds): a provider
        makes no business decision of its own.

        With ``on_partial``, the result is streamed: the callback receives the object
        parsed so far each time it grows (a string being written included, cut short),
        so a caller can show an answer as it is generated. A provider that cannot stream
        calls it once with the whole result. The return value is the same either way.
        """
        ...

    def run_tools(
        self,
        *,
        system: str,
        messages: list[Message],
        tools: list[Tool],
        execute: Callable[[ToolCall], dict],
        schema: dict,
        schema_name: str,
        context: dict | None = None,
        max_steps: int = 4,
        max_tokens: int = 1024,
    ) -> ToolRun:
        """Let the model call ``tools`` (run by ``execute``) for at most ``max_steps``
        requests, then return its structured result: the input of one more tool named
        ``schema_name`` with ``schema`` as input schema, offered beside ``tools``.

        Every request makes the model call some tool; the last one (number
        ``max_steps``) makes it call the result tool. What ``execute`` returns goes back
        to the model as the tool's result; what it raises goes back as an error result
        and the run goes on. The local provider runs the calls ``context["tool_plan"]``
        prescribes instead of asking a model.
        """
        ...


def check_shape(data: Any, schema: dict) -> dict:
    """The output must be an object with every required key (types are the model's job)."""
    if not isinstance(data, dict):
        raise LLMBadOutput(f"expected a JSON object, got {type(data).__name__}")
    missing = [key for key in schema.get("required", []) if key not in data]
    if missing:
        raise LLMBadOutput(f"missing keys: {', '.join(missing)}")
    return data


def execute_call(
    call: ToolCall,
    *,
    step: int,
    execute: Callable[[ToolCall], dict],
    known: set[str],
    invalid: str = "",
) -> dict:
    """Run one tool call through the caller's ``execute`` and return its record for
    ``ToolRun.calls``. A failure is recorded (``"error"``), never raised: it goes back to
    the model, which may try otherwise. ``invalid``: why the arguments are unusable."""
    record = {"step": step, "id": call.id, "name": call.name, "arguments": call.arguments}
    if call.name not in known:
        return {**record, "result": None, "ms": 0, "error": f"unknown tool {call.name!r}"}
    if invalid:
        return {**record, "result": None, "ms": 0, "error": invalid}
    started = time.perf_counter()
    try:
        result = execute(call)
    except Exception as exc:  # the tool's failure is the model's information, not ours
        error = str(exc) or type(exc).__name__
        ms = round((time.perf_counter() - started) * 1000)
        return {**record, "result": None, "ms": ms, "error": error}
    return {**record, "result": result, "ms": round((time.perf_counter() - started) * 1000)}


def result_text(record: dict) -> str:
    """A call's result as the JSON text that goes back to the model."""
    return json.dumps(record["result"], ensure_ascii=False, default=str)


def parse_partial(text: str) -> dict[str, Any] | None:
    """The object a prefix of streamed JSON stands for so far, with a string cut short
    kept (``'{"answer": "Go to Se'`` → ``{"answer": "Go to Se"}``); None before the object
    has begun or when the text is not JSON."""
    import jiter

    if not text.strip():
        return None
    try:
        value = jiter.from_json(text.encode("utf-8"), partial_mode="trailing-strings")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
