"""Redis through Sentinel: the master is whichever server the Sentinels name now.

With ``REDIS_SENTINELS=host:port,host:port`` (and ``REDIS_SENTINEL_MASTER``, the name the
Sentinels monitor; ``REDIS_SENTINEL_PASSWORD``, the master's password if it has one),
settings build every Redis client of the product from here instead of ``REDIS_URL``:

- Celery's broker and results: ``sentinel://`` URLs (one per Sentinel, joined by ``;``)
  with ``master_name`` in the transport options (kombu's and Celery's Sentinel support);
- Channels: a ``channels_redis`` host with ``sentinels`` and ``master_name``;
- the cache (Django's Redis cache): :class:`SentinelConnectionPool` as its ``pool_class``;
- readiness and presence: :func:`redis_client`.

After a failover the Sentinels name the new master and each client reconnects to it.
The four roles keep their database numbers (0 broker, 1 results, 2 cache, 3 Channels).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import redis
from django.core.exceptions import ImproperlyConfigured
from redis.sentinel import Sentinel

DEFAULT_SENTINEL_PORT = 26379


def parse_sentinels(values: list[str]) -> list[tuple[str, int]]:
    """``["h1:26379", "h2"]`` → ``[("h1", 26379), ("h2", 26379)]``."""
    found = []
    for value in (v.strip() for v in values):
        if not value:
            continue
        host, colon, port = value.rpartition(":")
        if not colon:
            host, port = value, str(DEFAULT_SENTINEL_PORT)
        if not host or not port.isdigit():
            raise ImproperlyConfigured(
                f"REDIS_SENTINELS: {value!r} is not host:port (e.g. sentinel-1:26379)."
            )
        found.append((host, int(port)))
    return found


def celery_url(sentinels: list[tuple[str, int]], db: int, password: str = "") -> str:
    """``sentinel://[:password@]h1:26379/db;sentinel://…`` for kombu and Celery."""
    auth = f":{quote(password, safe='')}@" if password else ""
    return ";".join(f"sentinel://{auth}{host}:{port}/{db}" for host, port in sentinels)


def channels_host(
    sentinels: list[tuple[str, int]], master: str, db: int, password: str = "", **options
) -> dict:
    """One ``CHANNEL_LAYERS`` host entry that finds the master through the Sentinels."""
    host = {"sentinels": list(sentinels), "master_name": master, "db": db, **options}
    if password:
        host["password"] = password
    return host


class SentinelConnectionPool(redis.sentinel.SentinelConnectionPool):
    """A pool of connections to the current master, for Django's Redis cache.

    Django builds its pool with ``pool_class.from_url(LOCATION, **OPTIONS)``; here
    ``LOCATION`` only carries the database number (``redis-sentinel://<master>/2``) and
    ``OPTIONS`` add ``sentinels``, ``master_name`` and the usual socket options.
    """

    @classmethod
    def from_url(cls, url: str, *, sentinels, master_name: str, **options):
        db = url_db(url)
        sentinel_manager = Sentinel(
            [tuple(s) for s in sentinels],
            socket_timeout=options.get("socket_timeout"),
            socket_connect_timeout=options.get("socket_connect_timeout"),
        )
        return cls(master_name, sentinel_manager, db=db, **options)


def redis_client(url: str, **options) -> redis.Redis:
    """A client of the Redis database ``url`` names (``settings.REDIS_URL``,
    ``settings.CACHE_URL``…): through the Sentinels when ``REDIS_SENTINELS`` is set (the
    URL is then ``redis-sentinel://<master>/<db>``), else straight to it."""
    from django.conf import settings

    if not settings.REDIS_SENTINELS:
        return redis.Redis.from_url(url, **options)
    sentinel_manager = Sentinel(
        settings.REDIS_SENTINELS,
        socket_timeout=options.get("socket_timeout"),
        socket_connect_timeout=options.get("socket_connect_timeout"),
    )
    return sentinel_manager.master_for(
        settings.REDIS_SENTINEL_MASTER,
        db=url_db(url),
        password=settings.REDIS_SENTINEL_PASSWORD or None,
        **options,
    )


def url_db(url: str) -> int:
    """The database number of a Redis URL (``…/2`` → 2; none → 0)."""
    return int(urlsplit(url).path.lstrip("/") or 0)
