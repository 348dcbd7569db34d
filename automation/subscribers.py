"""What automation does when support (or feedback) announces a change (core.events)."""

from __future__ import annotations


def ticket_activity(*, ticket_id: int, kind: str, events: list) -> None:
    """Rules triggered by the change run; outbound webhooks subscribed to it are queued."""
    from automation import engine, webhooks

    engine.on_ticket_activity(ticket_id=ticket_id, kind=kind, events=events)
    webhooks.on_ticket_activity(ticket_id=ticket_id, kind=kind, events=events)


def feature_request_status(*, feature_request_id: int, old: str, new: str) -> None:
    from automation import webhooks

    webhooks.on_feature_request_status(feature_request_id=feature_request_id, old=old, new=new)
