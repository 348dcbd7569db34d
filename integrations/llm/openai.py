"""GPT through the official ``openai`` SDK with structured outputs (a strict JSON schema
as ``response_format``)."""

from __future__ import annotations

import json
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

DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIProvider:
    name = "openai"

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
        import openai

        self._sdk = openai
        self.model = model
        self.client = openai.OpenAI(
            api_key=api_key,
            max_retries=max_retries,
            timeout=timeout,
            base_url=base_url,
            http_client=http_client,
        )

    @classmethod
    def from_settings(cls, **overrides) -> OpenAIProvider:
        if not settings.OPENAI_API_KEY and "api_key" not in overrides:
            raise LLMError("HELPDESK_LLM_PROVIDER=openai needs OPENAI_API_KEY.")
        options = {
            "api_key": settings.OPENAI_API_KEY,
            "model": settings.HELPDESK_LLM_MODEL or DEFAULT_MODEL,
            "max_retries": settings.HELPDESK_LLM_MAX_RETRIES,
            "timeout": settings.HELPDESK_LLM_TIMEOUT_SECONDS,
            "base_url": settings.OPENAI_BASE_URL or None,
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
        strict = {key: value for key, value in schema.items() if key != "description"}
        last_error: Exception | None = None
        for _attempt in range(2):  # one more try when the output is not the JSON we asked for
            try:
                response = self.client.chat.completions.create(
                    model=self.model,
                    max_tokens=max_tokens,
                    messages=[
                        {"role": "system", "content": system},
                        *({"role": m.role, "content": m.content} for m in messages),
                    ],
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": schema_name, "schema": strict, "strict": True},
                    },
                )
            except (
                self._sdk.RateLimitError,
                self._sdk.InternalServerError,
                self._sdk.APITimeoutError,
                self._sdk.APIConnectionError,
            ) as exc:
                raise LLMUnavailable(f"OpenAI unavailable: {exc}") from exc
            except self._sdk.APIStatusError as exc:
                if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                    raise LLMUnavailable(f"OpenAI unavailable: {exc}") from exc
                raise LLMError(f"OpenAI refused the request: {exc}") from exc
            choice = response.choices[0]
            text = choice.message.content or ""
            try:
                if choice.message.refusal:
                    raise LLMBadOutput(f"refused: {choice.message.refusal}")
                try:
                    data = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise LLMBadOutput(f"not JSON: {exc.msg}") from exc
                data = check_shape(data, schema)
            except LLMBadOutput as exc:
                last_error = exc
                continue
            usage = response.usage
            return Completion(
                data=data,
                model=response.model,
                provider=self.name,
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                latency_ms=round((time.perf_counter() - started) * 1000),
                raw_text=text,
            )
        raise LLMBadOutput(f"OpenAI output unusable: {last_error}")
