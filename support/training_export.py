"""Approved training examples as fine-tuning / evaluation records, one JSON object a line.

Formats:

``openai``
    OpenAI chat fine-tuning: ``{"messages": [{"role": "system", …}, {"role": "user", …},
    {"role": "assistant", …}]}``.
``anthropic``
    Claude fine-tuning (Amazon Bedrock's Claude format): ``{"system": "…", "messages":
    [{"role": "user", …}, {"role": "assistant", …}]}``.
``jsonl``
    This helpdesk's own record, for evaluation sets and other tools: id, question, answer,
    ticket type, outcome, author (ai/human), quality score, rating, confidence, the kinds of
    personal data that were removed, dates.

Only anonymized texts leave: the originals are never exported.
"""

from __future__ import annotations

from support.models import TrainingExample

FORMATS = ("openai", "anthropic", "jsonl")

SYSTEM_PROMPT = (
    "You are the customer support agent of this product. Answer the customer's question "
    "clearly and kindly from what you know of the product; say so and offer a person when "
    "you are not sure. Placeholders like [EMAIL] or [NAME] stand for personal data."
)


def record(example: TrainingExample, fmt: str) -> dict:
    question, answer = example.anonymized_question, example.anonymized_answer
    if fmt == "openai":
        return {
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        }
    if fmt == "anthropic":
        return {
            "system": SYSTEM_PROMPT,
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ],
        }
    if fmt == "jsonl":
        return {
            "id": example.pk,
            "question": question,
            "answer": answer,
            "ticket_type": example.ticket_type,
            "outcome": example.outcome,
            "author": example.author_kind,
            "quality_score": example.quality_score,
            "satisfaction_rating": example.satisfaction_rating,
            "confidence": example.confidence,
            "pii_removed": list(example.pii_found),
            "created_at": example.created_at.isoformat(),
            "reviewed_at": example.reviewed_at.isoformat() if example.reviewed_at else None,
        }
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
