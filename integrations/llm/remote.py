"""What the two SDK-backed providers share: configuration from settings, the mapping of
SDK errors to our typed errors, one more try when the output has the wrong shape, and the
choice between one response and a stream (when the caller wants the result as it grows)."""

from __future__ import annotations

import time

from django.conf import settings

from integrations.llm.base import (
    Completion,
    LLMBadOutput,
    LLMError,
    LLMUnavailable,
    Message,
    PartialCallback,
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
        for _attempt in range(2):  # one more try when the output has the wrong shape
            try:
                request = {
                    "system": system,
                    "messages": messages,
                    "schema": schema,
                    "schema_name": schema_name,
                    "max_tokens": max_tokens,
                }
                if on_partial is None:
                    completion = self._call(**request)
                else:
                    completion = self._stream(**request, on_partial=on_partial)
            except LLMBadOutput as exc:
                last_error = exc
                continue
            except LLMError:
                raise
            except Exception as exc:
                raise self._classify(exc) from exc
            completion.latency_ms = round((time.perf_counter() - started) * 1000)
            return completion
        raise LLMBadOutput(f"{self.name} output unusable: {last_error}")

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


def _error_type(body) -> str:
    """The error type in an error body: Anthropic's ``{"type": "error", "error": {"type":
    …}}``, OpenAI's ``{"type": …}`` (the SDK passes the inner ``error`` object)."""
    if not isinstance(body, dict):
        return ""
    inner = body.get("error")
    if isinstance(inner, dict):
        return str(inner.get("type") or "")
    return str(body.get("type") or "")
