"""GPT through the official ``openai`` SDK with structured outputs (a strict JSON schema
as ``response_format``).

Streamed (``stream=True``), the JSON arrives as ``chat.completion.chunk`` content deltas,
parsed with what came before and handed to ``on_partial``; the last chunk carries the
token usage (``stream_options.include_usage``)."""

from __future__ import annotations

import json

from integrations.llm.base import Completion, LLMBadOutput, check_shape, parse_partial
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

    def _request(self, *, system, messages, schema, schema_name, max_tokens) -> dict:
        strict = {key: value for key, value in schema.items() if key != "description"}
        return {
            "model": self.model,
            "max_tokens": max_tokens,
            "messages": [
                {"role": "system", "content": system},
                *({"role": m.role, "content": m.content} for m in messages),
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": strict, "strict": True},
            },
        }

    def _call(self, *, system, messages, schema, schema_name, max_tokens) -> Completion:
        response = self.client.chat.completions.create(
            **self._request(
                system=system,
                messages=messages,
                schema=schema,
                schema_name=schema_name,
                max_tokens=max_tokens,
            )
        )
        choice = response.choices[0]
        return self._completion(
            text=choice.message.content or "",
            refusal=choice.message.refusal,
            model=response.model,
            usage=response.usage,
            schema=schema,
        )

    def _stream(
        self, *, system, messages, schema, schema_name, max_tokens, on_partial
    ) -> Completion:
        request = self._request(
            system=system,
            messages=messages,
            schema=schema,
            schema_name=schema_name,
            max_tokens=max_tokens,
        )
        text, refusal, model, usage = "", "", self.model, None
        stream = self.client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        with stream:
            for chunk in stream:
                model = chunk.model or model
                usage = chunk.usage or usage
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    refusal += choice.delta.refusal or ""
                    if choice.delta.content:
                        text += choice.delta.content
                        partial = parse_partial(text)
                        if partial:
                            on_partial(partial)
        return self._completion(text=text, refusal=refusal, model=model, usage=usage, schema=schema)

    def _completion(self, *, text, refusal, model, usage, schema) -> Completion:
        if refusal:
            raise LLMBadOutput(f"refused: {refusal}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LLMBadOutput(f"not JSON: {exc.msg}") from exc
        return Completion(
            data=check_shape(data, schema),
            model=model,
            provider=self.name,
            raw_text=text,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )
