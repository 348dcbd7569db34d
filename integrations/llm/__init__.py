"""LLM providers (Anthropic, OpenAI, offline local) behind one small interface."""
