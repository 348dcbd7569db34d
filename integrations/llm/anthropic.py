"""Claude through the official ``anthropic`` SDK; the structured result comes back as the
input of a tool the model is made to call (``tool_choice`` forces it)."""

from __future__ import annotations

from integrations.llm.base import Completion, LLMBadOutput, check_shape
from integrations.llm.remote import RemoteProvider

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

    def _call(self, *, system, messages, schema, schema_name, max_tokens) -> Completion:
        tool = {
            "name": schema_name,
            "description": schema.get("description", schema_name),
            "input_schema": schema,
        }
        response = self.client.messages.create(
            model=self.model,
            max_tokens=max_tokens,
            system=system,
            messages=[{"role": m.role, "content": m.content} for m in messages],
            tools=[tool],
            tool_choice={"type": "tool", "name": schema_name},
        )
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
