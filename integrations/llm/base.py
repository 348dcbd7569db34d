from __future__ import annotations

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


def check_shape(data: Any, schema: dict) -> dict:
    """The output must be an object with every required key (types are the model's job)."""
    if not isinstance(data, dict):
        raise LLMBadOutput(f"expected a JSON object, got {type(data).__name__}")
    missing = [key for key in schema.get("required", []) if key not in data]
    if missing:
        raise LLMBadOutput(f"missing keys: {', '.join(missing)}")
    return data


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
