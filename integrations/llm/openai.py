"""GPT through the official ``openai`` SDK with structured outputs (a strict JSON schema
as ``response_format``)."""

from __future__ import annotations

import json

from integrations.llm.base import Completion, LLMBadOutput, check_shape
from integrations.llm.remote import RemoteProvider

DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIProvider(RemoteProvider):
    name = "openai"
    default_model = DEFAULT_MODEL
    key_setting = "OPENAI_API_KEY"
    base_url_setting = "OPENAI_BASE_URL"

    def _sdk(self):
        import openai

        return openai

    def _make_client(self, **options):
        return self._sdk().OpenAI(**options)

    def _call(self, *, system, messages, schema, schema_name, max_tokens) -> Completion:
        strict = {key: value for key, value in schema.items() if key != "description"}
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
        choice = response.choices[0]
        if choice.message.refusal:
            raise LLMBadOutput(f"refused: {choice.message.refusal}")
        text = choice.message.content or ""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LLMBadOutput(f"not JSON: {exc.msg}") from exc
        usage = response.usage
        return Completion(
            data=check_shape(data, schema),
            model=response.model,
            provider=self.name,
            raw_text=text,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )
