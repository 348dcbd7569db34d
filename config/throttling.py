"""Rate limits that fail open: when the cache (Redis) cannot be reached, the request goes on.

DRF's throttles keep their sliding windows in the Django cache. With Redis away, a plain
throttle raises and every API call answers 500, reads included, although PostgreSQL alone
could serve them. Here a throttle that cannot reach the cache lets the request through and
says so in the log, at most once every :data:`WARNING_INTERVAL` seconds per process, so an
outage is visible without one line per request. The cache's short socket timeouts (settings,
``CACHES``) bound how long finding out costs; after a failure the process does not ask the
cache again for :data:`RETRY_AFTER` seconds, so a Redis that hangs rather than refuses
costs one request half a second, not every request of the outage.

The API's defaults (``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]``), the ticket-create
scope and the roadmap's limits (``feedback.throttling``) all use :class:`FailOpenMixin`.
"""

from __future__ import annotations

import logging
import threading
import time

from redis.exceptions import RedisError
from rest_framework import throttling

logger = logging.getLogger(__name__)

#: What the cache raises when Redis is away (refused, reset, timed out).
CACHE_ERRORS = (RedisError, OSError)
#: Seconds between two "throttling is off" warnings of one process.
WARNING_INTERVAL = 30.0
#: Seconds after a cache failure during which throttles let requests through untried.
RETRY_AFTER = 5.0

_lock = threading.Lock()
_last_warning = float("-inf")
_cache_down_until = float("-inf")


def cache_down() -> bool:
    return time.monotonic() < _cache_down_until


def note_cache_failure(scope: str | None, error: Exception) -> None:
    global _last_warning, _cache_down_until
    now = time.monotonic()
    with _lock:
        _cache_down_until = now + RETRY_AFTER
        if now - _last_warning < WARNING_INTERVAL:
            return
        _last_warning = now
    logger.warning(
        "rate limits are off: the cache is unreachable (%s: %s); requests are let through",
        type(error).__name__,
        error,
        extra={"throttle_scope": scope},
    )


class FailOpenMixin:
    """For a cache-backed DRF throttle: allow the request when the cache raises."""

    def allow_request(self, request, view):
        if cache_down():
            return True
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS as error:
            note_cache_failure(getattr(self, "scope", None), error)
            return True


class AnonRateThrottle(FailOpenMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(FailOpenMixin, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(FailOpenMixin, throttling.ScopedRateThrottle):
    pass
