"""The Redis cache, failing open: with Redis away, a cache call answers "nothing cached"
instead of raising.

Everything the product keeps in the cache is an optimisation or a limit: DRF's and the
roadmap's rate limits, the ticket budget, allauth's sign-in and sign-up limits, the beat
heartbeat, the SLA-risk watermark. None of it is worth a 500 on a page that PostgreSQL
alone can serve (signing in, opening a ticket). So while Redis cannot be reached, reads
miss, writes are dropped and ``add`` reports success (a limit that cannot count lets the
request through), with one warning every ``WARNING_INTERVAL`` seconds per process
(``config.throttling``); after a failure the cache is not asked again for
``RETRY_AFTER`` seconds, so a Redis that hangs costs one request its socket timeout, not
every request. Readiness (``/health/ready/``) still reports Redis down.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache

from config import throttling


def _fail_open(name: str, fallback):
    def method(self, *args, **kwargs):
        if throttling.cache_down():
            return fallback(*args, **kwargs)
        try:
            return getattr(RedisCache, name)(self, *args, **kwargs)
        except throttling.CACHE_ERRORS as error:
            throttling.note_cache_failure(None, error)
            return fallback(*args, **kwargs)

    method.__name__ = name
    return method


def _default(key, default=None, *args, **kwargs):
    return default


class FailOpenRedisCache(RedisCache):
    get = _fail_open("get", _default)
    get_many = _fail_open("get_many", lambda *a, **k: {})
    has_key = _fail_open("has_key", lambda *a, **k: False)
    add = _fail_open("add", lambda *a, **k: True)
    set = _fail_open("set", lambda *a, **k: None)
    set_many = _fail_open("set_many", lambda *a, **k: [])
    touch = _fail_open("touch", lambda *a, **k: False)
    delete = _fail_open("delete", lambda *a, **k: False)
    delete_many = _fail_open("delete_many", lambda *a, **k: None)
    incr = _fail_open("incr", lambda key, delta=1, *a, **k: delta)
    clear = _fail_open("clear", lambda *a, **k: None)
