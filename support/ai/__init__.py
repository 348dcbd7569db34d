"""The AI support agent: triage → retrieve → answer → route (see ARCHITECTURE.md).

``plan()`` is pure (used by the pipeline and by ``evaluate_agent``); ``pipeline`` writes
through ``support.services``; providers live in ``integrations.llm``."""
