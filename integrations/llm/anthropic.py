"""Claude through the official ``anthropic`` SDK; the structured result comes back as the
input of a tool the model is made to call (``tool_choice`` forces it).

Streamed (``messages.stream``), the tool's input arrives as ``input_json_delta`` pieces of
JSON text; each one is parsed with what came before and handed to ``on_partial``.

Tool use (``run_tools``): the assistant's turn goes back as returned (its ``text`` and
``tool_use`` blocks), followed by one user turn holding a ``tool_result`` block per call."""

from __future__ import annotations

from integrations.llm.base import (
    Completion,
    LLMBadOutput,
    ToolCall,
    check_shape,
    parse_partial,
    result_text,
)
from integrations.llm.remote import RemoteProvider, ToolTurn

DEFAULT_MODEL = "claude-sonnet-4-6"


class AnthropicProvider(RemoteProvider):
    name = "anthropic"
    default_model = DEFAULT_MODEL
    key_setting = "ANTHROPIC_API_KEY"
    base_url_setting = "ANTHROPIC_BASE_URL"

    def _sdk(self):
        import anthropic

        return anthropic

    def _make_client(self, **options):
        return self._sdk().Anthropic(**options)

    def _request(self, *, system, messages, schema, schema_name, max_tokens) -> dict:
        tool = {
            "name": schema_name,
            "description": schema.get("description", schema_name),
            "input_schema": schema,
        }
        return {
            "model": self.model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "tools": [tool],
            "tool_choice": {"type": "tool", "name": schema_name},
        }

    def _call(self, *, system, messages, schema, schema_name, max_tokens) -> Completion:
        response = self.client.messages.create(
            **self._request(
                system=system,
                messages=messages,
                schema=schema,
                schema_name=schema_name,
                max_tokens=max_tokens,
            )
        )
        return self._completion(response, schema)

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
        tool_blocks: set[int] = set()
        pieces: dict[int, str] = {}
        with self.client.messages.stream(**request) as stream:
            for event in stream:
                if event.type == "content_block_start" and event.content_block.type == "tool_use":
                    tool_blocks.add(event.index)
                elif (
                    event.type == "content_block_delta"
                    and event.delta.type == "input_json_delta"
                    and event.index in tool_blocks
                ):
                    pieces[event.index] = pieces.get(event.index, "") + event.delta.partial_json
                    partial = parse_partial(pieces[event.index])
                    if partial:
                        on_partial(partial)
            response = stream.get_final_message()
        return self._completion(response, schema)

    def _completion(self, response, schema) -> Completion:
        block = next((b for b in response.content if b.type == "tool_use"), None)
        if block is None:
            raise LLMBadOutput("the model did not call the result tool")
        return Completion(
            data=check_shape(block.input, schema),
            model=response.model,
            provider=self.name,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
        )

    # ---- tool use -----------------------------------------------------------------------

    def _tool_conversation(self, messages):
        return [{"role": m.role, "content": m.content} for m in messages]

    def _tool_turn(self, *, system, conversation, tools, force, max_tokens) -> ToolTurn:
        response = self.client.messages.create(
            model=self.model,
            max_tokens=max_tokens,
            system=system,
            messages=conversation,
            tools=[
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in tools
            ],
            tool_choice={"type": "tool", "name": force} if force else {"type": "any"},
        )
        blocks = [
            block.model_dump(mode="json", exclude_none=True)
            for block in response.content
            if not (block.type == "text" and not block.text)  # the API refuses empty text
        ]
        return ToolTurn(
            calls=[
                ToolCall(id=b.id, name=b.name, arguments=dict(b.input))
                for b in response.content
                if b.type == "tool_use"
            ],
            message={"role": "assistant", "content": blocks},
            model=response.model,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
        )

    def _tool_results(self, turn, results):
        return [
            turn.message,
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": record["error"] if "error" in record else result_text(record),
                        "is_error": "error" in record,
                    }
                    for call, record in results
                ],
            },
        ]
