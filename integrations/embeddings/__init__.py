"""Embedding providers (local MiniLM, OpenAI) behind one small interface."""
