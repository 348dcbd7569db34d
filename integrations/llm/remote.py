"""What the two SDK-backed providers share: configuration from settings, the mapping of
SDK errors to our typed errors, one more try when the output has the wrong shape, the
choice between one response and a stream (when the caller wants the result as it grows),
and the tool-use loop (``run_tools``), each provider speaking its own API's dialect."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from integrations.llm.base import (
    Completion,
    LLMBadOutput,
    LLMError,
    LLMUnavailable,
    Message,
    PartialCallback,
    Tool,
    ToolCall,
    ToolRun,
    check_shape,
    execute_call,
)

#: HTTP statuses worth waiting out (the SDK already retried them with backoff).
TRANSIENT_STATUSES = {408, 409, 429, 529}
#: Error types a stream may end with after a 200 (the status no longer tells).
TRANSIENT_ERROR_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "server_error"}


class RemoteProvider:
    name: str
    default_model: str
    key_setting: str
    base_url_setting: str

    def __init__(
        self,
        *,
        api_key: str,
        model: str | None = None,
        max_retries: int = 3,
        timeout: float = 60.0,
        base_url: str | None = None,
        http_client=None,
    ):
        self.model = model or self.default_model
        self.client = self._make_client(
            api_key=api_key,
            max_retries=max_retries,
            timeout=timeout,
            base_url=base_url,
            http_client=http_client,
        )

    @classmethod
    def from_settings(cls, **overrides):
        api_key = getattr(settings, cls.key_setting)
        if not api_key and "api_key" not in overrides:
            raise LLMError(f"HELPDESK_LLM_PROVIDER={cls.name} needs {cls.key_setting}.")
        options = {
            "api_key": api_key,
            "model": settings.HELPDESK_LLM_MODEL or cls.default_model,
            "max_retries": settings.HELPDESK_LLM_MAX_RETRIES,
            "timeout": settings.HELPDESK_LLM_TIMEOUT_SECONDS,
            "base_url": getattr(settings, cls.base_url_setting) or None,
        }
        return cls(**{**options, **overrides})

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
        started = time.perf_counter()
        last_error: Exception | None = None
        request = {
            "system": system,
            "messages": messages,
            "schema": schema,
            "schema_name": schema_name,
            "max_tokens": max_tokens,
        }
        for _attempt in range(2):  # one more try when the output has the wrong shape
            try:
                with self._sdk_errors():
                    if on_partial is None:
                        completion = self._call(**request)
                    else:
                        completion = self._stream(**request, on_partial=on_partial)
            except LLMBadOutput as exc:
                last_error = exc
                continue
            completion.latency_ms = round((time.perf_counter() - started) * 1000)
            return completion
        raise LLMBadOutput(f"{self.name} output unusable: {last_error}")

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
        """The bounded tool-use loop (see ``LLMProvider.run_tools``).

        An unusable answer (the result tool's input misses required keys, or the model
        called no tool although it had to) is answered with an error result and asked
        for once more, forcing the result tool; the second one raises ``LLMBadOutput``.
        """
        if any(tool.name == schema_name for tool in tools):
            raise LLMError(f"a tool may not be named like the result ({schema_name!r})")
        started = time.perf_counter()
        result_tool = Tool(schema_name, schema.get("description", schema_name), schema)
        offered = [*tools, result_tool]
        known = {tool.name for tool in tools}
        conversation = self._tool_conversation(messages)
        records: list[dict] = []
        input_tokens = output_tokens = 0
        step, retry_left, force_next = 0, True, False
        while True:
            step += 1
            at_limit = step >= max_steps
            forced = force_next or at_limit
            with self._sdk_errors():
                turn = self._tool_turn(
                    system=system,
                    conversation=conversation,
                    tools=offered,
                    force=schema_name if forced else None,
                    max_tokens=max_tokens,
                )
            input_tokens += turn.input_tokens
            output_tokens += turn.output_tokens
            # Other calls of the same turn run first (and are recorded) even when it answers.
            results: dict[str, dict] = {}
            for call in turn.calls:
                if call.name != schema_name:
                    results[call.id] = execute_call(
                        call,
                        step=step,
                        execute=execute,
                        known=known,
                        invalid=turn.invalid.get(call.id, ""),
                    )
                    records.append(results[call.id])
            answer = next((c for c in turn.calls if c.name == schema_name), None)
            problem = ""
            if answer is not None:
                try:
                    if answer.id in turn.invalid:
                        raise LLMBadOutput(turn.invalid[answer.id])
                    data = check_shape(answer.arguments, schema)
                except LLMBadOutput as exc:
                    problem = str(exc)
                else:
                    completion = Completion(
                        data=data,
                        model=turn.model,
                        provider=self.name,
                        input_tokens=input_tokens,
                        output_tokens=output_tokens,
                        latency_ms=round((time.perf_counter() - started) * 1000),
                        raw_text=turn.answer_text(answer.id),
                    )
                    return ToolRun(
                        completion=completion,
                        calls=records,
                        steps=step,
                        stopped="step_limit" if at_limit else "answered",
                    )
            elif forced or not turn.calls:
                problem = "the model did not call the result tool"
            if problem:
                if not retry_left:
                    raise LLMBadOutput(f"{self.name} output unusable: {problem}")
                retry_left, force_next = False, True
            if turn.calls:  # every call needs its result in the next turn, answers included
                for call in turn.calls:
                    if call.name == schema_name:
                        results[call.id] = {"result": None, "error": problem}
                ordered = [(call, results[call.id]) for call in turn.calls]
                conversation.extend(self._tool_results(turn, ordered))

    @contextmanager
    def _sdk_errors(self):
        """The SDK's exceptions (after its own retries) as our typed errors."""
        try:
            yield
        except LLMError:
            raise
        except Exception as exc:
            raise self._classify(exc) from exc

    def _classify(self, exc: Exception) -> LLMError:
        sdk = self._sdk()
        if isinstance(
            exc,
            sdk.RateLimitError
            | sdk.InternalServerError
            | sdk.APITimeoutError
            | sdk.APIConnectionError,
        ):
            return LLMUnavailable(f"{self.name} unavailable: {exc}")
        transient_body = _error_type(getattr(exc, "body", None)) in TRANSIENT_ERROR_TYPES
        if isinstance(exc, sdk.APIStatusError):
            if exc.status_code in TRANSIENT_STATUSES or exc.status_code >= 500 or transient_body:
                return LLMUnavailable(f"{self.name} unavailable: {exc}")
            return LLMError(f"{self.name} refused the request: {exc}")
        if isinstance(exc, sdk.APIError):
            if transient_body:
                return LLMUnavailable(f"{self.name} unavailable: {exc}")
            return LLMError(f"{self.name} error: {exc}")
        raise exc

    # Subclasses: the SDK module, its client, and one request.
    def _sdk(self):
        raise NotImplementedError

    def _make_client(self, **options):
        raise NotImplementedError

    def _call(self, *, system, messages, schema, schema_name, max_tokens) -> Completion:
        raise NotImplementedError

    def _stream(
        self, *, system, messages, schema, schema_name, max_tokens, on_partial
    ) -> Completion:
        raise NotImplementedError

    # Subclasses, for ``run_tools``: the API's conversation, one request, and the turn that
    # carries the results back.
    def _tool_conversation(self, messages: list[Message]) -> list[dict]:
        raise NotImplementedError

    def _tool_turn(self, *, system, conversation, tools, force, max_tokens) -> ToolTurn:
        """One request; ``force``: the name of the tool the model must call, or None for
        any tool."""
        raise NotImplementedError

    def _tool_results(self, turn: ToolTurn, results: list[tuple[ToolCall, dict]]) -> list[dict]:
        """The messages that go on the conversation after ``turn``: the assistant's turn as
        returned, then each call's result (a record of ``execute_call``; ``"error"`` in
        it makes it an error result)."""
        raise NotImplementedError


@dataclass
class ToolTurn:
    """One response of a tool-use run, in the provider-neutral form the loop works on."""

    calls: list[ToolCall]
    message: dict  # the assistant's turn, as it goes back into the conversation
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    #: Call id → why its arguments are unusable (OpenAI sends them as text: maybe not JSON).
    invalid: dict[str, str] = field(default_factory=dict)
    #: Call id → its arguments as the model wrote them (kept as the answer's ``raw_text``).
    raw: dict[str, Any] = field(default_factory=dict)

    def answer_text(self, call_id: str) -> str:
        return str(self.raw.get(call_id, ""))


def _error_type(body) -> str:
    """The error type in an error body: Anthropic's ``{"type": "error", "error": {"type":
    …}}``, OpenAI's ``{"type": …}`` (the SDK passes the inner ``error`` object)."""
    if not isinstance(body, dict):
        return ""
    inner = body.get("error")
    if isinstance(inner, dict):
        return str(inner.get("type") or "")
    return str(body.get("type") or "")
