from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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
    ) -> Completion:
        """Ask for one structured result. ``context`` carries the same retrieved data the
        messages quote, for providers that work on data rather than text (local)."""
        ...


def check_shape(data: Any, schema: dict) -> dict:
    """The output must be an object with every required key (types are the model's job)."""
    if not isinstance(data, dict):
        raise LLMBadOutput(f"expected a JSON object, got {type(data).__name__}")
    missing = [key for key in schema.get("required", []) if key not in data]
    if missing:
        raise LLMBadOutput(f"missing keys: {', '.join(missing)}")
    return data
