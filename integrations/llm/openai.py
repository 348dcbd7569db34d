"""GPT through the official ``openai`` SDK with structured outputs (a strict JSON schema
as ``response_format``).

Streamed (``stream=True``), the JSON arrives as ``chat.completion.chunk`` content deltas,
parsed with what came before and handed to ``on_partial``; the last chunk carries the
token usage (``stream_options.include_usage``).

Tool use (``run_tools``): function tools, ``strict`` where the schema allows it; the
assistant message goes back with its ``tool_calls``, then one ``tool`` message per call
(an error as ``{"error": …}``)."""

from __future__ import annotations

import json

from integrations.llm.base import (
    Completion,
    LLMBadOutput,
    ToolCall,
    check_shape,
    parse_partial,
    result_text,
)
from integrations.llm.remote import RemoteProvider, ToolTurn

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

    # ---- tool use -----------------------------------------------------------------------

    def _tool_conversation(self, messages):
        return [{"role": m.role, "content": m.content} for m in messages]

    def _tool_turn(self, *, system, conversation, tools, force, max_tokens) -> ToolTurn:
        response = self.client.chat.completions.create(
            model=self.model,
            max_tokens=max_tokens,
            messages=[{"role": "system", "content": system}, *conversation],
            tools=[_function_tool(t) for t in tools],
            tool_choice={"type": "function", "function": {"name": force}} if force else "required",
        )
        message = response.choices[0].message
        calls, invalid, raw, sent = [], {}, {}, []
        for tool_call in message.tool_calls or []:
            if tool_call.type != "function":
                continue  # only function tools are offered
            name, text = tool_call.function.name, tool_call.function.arguments
            sent.append(
                {
                    "id": tool_call.id,
                    "type": "function",
                    "function": {"name": name, "arguments": text},
                }
            )
            raw[tool_call.id] = text
            try:
                arguments = json.loads(text or "{}")
            except json.JSONDecodeError as exc:
                arguments, invalid[tool_call.id] = {}, f"arguments are not JSON: {exc.msg}"
            else:
                if not isinstance(arguments, dict):
                    arguments, invalid[tool_call.id] = {}, "arguments are not a JSON object"
            calls.append(ToolCall(id=tool_call.id, name=name, arguments=arguments))
        assistant = {"role": "assistant", "content": message.content}
        if sent:
            assistant["tool_calls"] = sent
        usage = response.usage
        return ToolTurn(
            calls=calls,
            message=assistant,
            model=response.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            invalid=invalid,
            raw=raw,
        )

    def _tool_results(self, turn, results):
        return [
            turn.message,
            *(
                {
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": json.dumps({"error": record["error"]}, ensure_ascii=False)
                    if "error" in record
                    else result_text(record),
                }
                for call, record in results
            ),
        ]


def _function_tool(tool) -> dict:
    parameters = {key: value for key, value in tool.input_schema.items() if key != "description"}
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": parameters,
            "strict": strict_allowed(parameters),
        },
    }


def strict_allowed(schema) -> bool:
    """Whether OpenAI's strict mode can take ``schema``: every object in it (nested ones
    included) closes its properties (``additionalProperties: false``) and requires all of
    them. Otherwise strict mode would reject the tool, so it is sent without."""
    if isinstance(schema, list):
        return all(strict_allowed(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    types = schema.get("type")
    is_object = "object" in (types if isinstance(types, list) else [types])
    properties = schema.get("properties") or {}
    if is_object or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required") or []) != set(properties):
            return False
    children = [
        *properties.values(),
        *(schema.get("$defs") or {}).values(),
        *(schema.get("definitions") or {}).values(),
        *(schema.get(key) for key in ("items", "anyOf", "oneOf", "allOf", "prefixItems")),
    ]
    return all(strict_allowed(child) for child in children if child is not None)
