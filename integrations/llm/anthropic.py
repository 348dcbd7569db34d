"""Claude through the official ``anthropic`` SDK; the structured result comes back as the
input of a tool the model is made to call (``tool_choice`` forces it)."""

from __future__ import annotations

import time

from django.conf import settings

from integrations.llm.base import (
    Completion,
    LLMBadOutput,
    LLMError,
    LLMUnavailable,
    Message,
    check_shape,
)

DEFAULT_MODEL = "claude-sonnet-4-6"


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        max_retries: int = 3,
        timeout: float = 60.0,
        base_url: str | None = None,
        http_client=None,
    ):
        import anthropic

        self._sdk = anthropic
        self.model = model
        self.client = anthropic.Anthropic(
            api_key=api_key,
            max_retries=max_retries,
            timeout=timeout,
            base_url=base_url,
            http_client=http_client,
        )

    @classmethod
    def from_settings(cls, **overrides) -> AnthropicProvider:
        if not settings.ANTHROPIC_API_KEY and "api_key" not in overrides:
            raise LLMError("HELPDESK_LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY.")
        options = {
            "api_key": settings.ANTHROPIC_API_KEY,
            "model": settings.HELPDESK_LLM_MODEL or DEFAULT_MODEL,
            "max_retries": settings.HELPDESK_LLM_MAX_RETRIES,
            "timeout": settings.HELPDESK_LLM_TIMEOUT_SECONDS,
            "base_url": settings.ANTHROPIC_BASE_URL or None,
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
    ) -> Completion:
        started = time.perf_counter()
        tool = {
            "name": schema_name,
            "description": schema.get("description", schema_name),
            "input_schema": schema,
        }
        last_error: Exception | None = None
        for _attempt in range(2):  # one more try when the output has the wrong shape
            try:
                response = self.client.messages.create(
                    model=self.model,
                    max_tokens=max_tokens,
                    system=system,
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    tools=[tool],
                    tool_choice={"type": "tool", "name": schema_name},
                )
            except (
                self._sdk.RateLimitError,
                self._sdk.InternalServerError,
                self._sdk.APITimeoutError,
                self._sdk.APIConnectionError,
            ) as exc:
                raise LLMUnavailable(f"Anthropic unavailable: {exc}") from exc
            except self._sdk.APIStatusError as exc:
                if exc.status_code in (408, 409, 429, 529) or exc.status_code >= 500:
                    raise LLMUnavailable(f"Anthropic unavailable: {exc}") from exc
                raise LLMError(f"Anthropic refused the request: {exc}") from exc
            block = next((b for b in response.content if b.type == "tool_use"), None)
            try:
                if block is None:
                    raise LLMBadOutput("the model did not call the result tool")
                data = check_shape(block.input, schema)
            except LLMBadOutput as exc:
                last_error = exc
                continue
            return Completion(
                data=data,
                model=response.model,
                provider=self.name,
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
                latency_ms=round((time.perf_counter() - started) * 1000),
            )
        raise LLMBadOutput(f"Anthropic output unusable: {last_error}")
