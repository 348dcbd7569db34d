"""Reads from a PostgreSQL read replica, only where a little staleness is harmless.

With ``DATABASE_REPLICA_URL`` set, settings add a ``replica`` database (same engine and
options as ``default``) and this router. Every query still goes to ``default`` unless the
code runs inside :func:`replica_reads` (a context manager and a decorator), which the
dashboards, the analytics API and knowledge search use. Even there:

- writes always go to ``default`` (a search's log row, a view count);
- a read inside a transaction on ``default`` stays on ``default``: it may be reading what
  that transaction just wrote, or locking rows;
- migrations run on ``default`` only (the replica copies them by streaming).

A replica lags its primary by a little (usually under a second), so what these pages show
may miss the last moments; a ticket page, a form or the API's ticket endpoints never read
from it. Without ``DATABASE_REPLICA_URL`` there is no ``replica`` database and
:func:`replica_reads` changes nothing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_reading_from_replica: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "helpdesk_replica_reads", default=False
)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads inside the block may be served by the replica (when there is one).

    Also a decorator (``@replica_reads()``): each call of the function opens the block.
    A context variable, so it holds for this thread or coroutine only.
    """
    token = _reading_from_replica.set(True)
    try:
        yield
    finally:
        _reading_from_replica.reset(token)


def read_alias() -> str:
    """The database the next read goes to: the replica inside :func:`replica_reads`, when
    one is configured and no transaction is open on ``default``; otherwise ``default``.
    Raw SQL uses it as ``connections[read_alias()]``."""
    if (
        _reading_from_replica.get()
        and replica_configured()
        and not connections[DEFAULT_DB_ALIAS].in_atomic_block
    ):
        return REPLICA
    return DEFAULT_DB_ALIAS


class ReplicaRouter:
    """``DATABASE_ROUTERS`` entry: see the module docstring."""

    def db_for_read(self, model, **hints) -> str | None:
        alias = read_alias()
        # Outside replica_reads: Django's own choice (the database the related instance
        # came from, else default).
        return alias if alias == REPLICA else None

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        # Both databases hold the same rows: a row read from the replica may be linked to
        # one written on default.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
