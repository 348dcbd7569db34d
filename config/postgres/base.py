"""Django's PostgreSQL backend, with one change to its psycopg pool's health check.

When PostgreSQL restarts, every idle pooled connection is dead. psycopg_pool checks the
connection it hands out, throws a dead one away and sleeps 1 s, 2 s, 4 s … before trying
the next dead one, so the first request after a restart waited ~7 s with four idle
connections (longer than the pool's wait: a needless 503). Here the first dead
connection makes the pool check all its idle connections at once, so the next one handed
out is a new, live connection (about 1 s after PostgreSQL is back).
"""

from __future__ import annotations

import logging

from django.db.backends.postgresql import base

logger = logging.getLogger(__name__)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        if pool is not None and not getattr(pool, "_helpdesk_sweeping", False):
            pool._helpdesk_sweeping = True
            check = pool._check  # psycopg_pool keeps the check it was given here

            if check is not None:

                def check_or_sweep(conn):
                    try:
                        check(conn)
                    except Exception:
                        logger.warning("database connection lost; checking the whole pool")
                        pool.check()  # drop every dead idle connection, open new ones
                        raise

                pool._check = check_or_sweep
        return pool
