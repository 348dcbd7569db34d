"""Outbound webhooks (being written)."""


def on_ticket_activity(*, ticket_id: int, kind: str, events: list) -> None:
    return None


def on_feature_request_status(*, feature_request_id: int, old: str, new: str) -> None:
    return None
