"""The rules engine (being written)."""


def on_ticket_activity(*, ticket_id: int, kind: str, events: list) -> None:
    return None
