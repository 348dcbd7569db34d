"""A clock set by hand, for writing history through the services.

Services, ``auto_now`` and ``auto_now_add`` fields and ``timezone.localdate()`` all ask
``django.utils.timezone.now()`` what time it is (no table has a database-side default
such as ``Now()`` or ``db_default``, and no service writes SQL ``now()``), so setting that
one function puts every row a service writes at the instant of the story::

    with set_clock(opened_at) as clock:
        ticket = services.ticket_open(...)
        clock.move_to(answered_at)
        services.message_add(...)

The clock is process-wide (a module attribute): for single-threaded scripts and tests,
such as the demo history, never inside a running server or worker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone


class Clock:
    """The instant ``timezone.now()`` answers while the clock is set."""

    def __init__(self, at: dt.datetime):
        self.move_to(at)

    def move_to(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("set the clock to an aware datetime")
        self._now = at.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        return self._now


@contextmanager
def set_clock(at: dt.datetime) -> Iterator[Clock]:
    """Until the block ends, ``django.utils.timezone.now()`` answers ``at`` (then
    wherever :meth:`Clock.move_to` moved it); the real clock is back afterwards."""
    clock = Clock(at)
    real = timezone.now
    timezone.now = clock.now
    try:
        yield clock
    finally:
        timezone.now = real
