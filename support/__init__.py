"""Tickets, conversations, escalations, CSAT and training examples, and the AI support
agent's orchestration (triage, retrieval, answer, routing)."""
