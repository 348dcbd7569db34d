"""LLM providers behind one small interface: ``complete(system=…, messages=…, schema=…)``
returns a ``Completion`` (structured output, token counts, model, latency).

``anthropic`` (Claude, structured output through a forced tool call), ``openai``
(structured outputs with a strict JSON schema) and ``local`` (offline: extractive answers
from the retrieved passages, confidence from retrieval strength). Retries with exponential
backoff and jitter on rate limits (honouring ``retry-after``) and 5xx are the official
SDKs' own; what still fails raises ``LLMUnavailable``; unusable output ``LLMBadOutput``.
``complete(…, on_partial=callback)`` streams instead (Anthropic and OpenAI SDK streaming;
``local`` answers in one piece) and calls back with the result parsed so far.
``run_tools(…, tools=…, execute=…)`` lets the model call the caller's tools for a bounded
number of requests before it must return the structured result (``ToolRun``); ``local``
runs the calls the caller's plan prescribes.
"""

from __future__ import annotations

from django.conf import settings

from integrations.llm.base import (
    Completion,
    LLMBadOutput,
    LLMError,
    LLMProvider,
    LLMUnavailable,
    Message,
    PartialCallback,
    Tool,
    ToolCall,
    ToolRun,
)
from integrations.llm.pricing import cost_usd

__all__ = [
    "Completion",
    "LLMBadOutput",
    "LLMError",
    "LLMProvider",
    "LLMUnavailable",
    "Message",
    "PartialCallback",
    "Tool",
    "ToolCall",
    "ToolRun",
    "cost_usd",
    "get_provider",
]


def get_provider(name: str | None = None, **overrides) -> LLMProvider:
    """A provider configured from settings (a new client each call: cheap, thread-safe)."""
    name = name or settings.HELPDESK_LLM_PROVIDER
    if name == "anthropic":
        from integrations.llm.anthropic import AnthropicProvider

        return AnthropicProvider.from_settings(**overrides)
    if name == "openai":
        from integrations.llm.openai import OpenAIProvider

        return OpenAIProvider.from_settings(**overrides)
    if name == "local":
        from integrations.llm.local import LocalProvider

        return LocalProvider()
    raise LLMError(f"Unknown LLM provider {name!r}.")
