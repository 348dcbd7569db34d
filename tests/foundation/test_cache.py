"""The cache fails open: with Redis unreachable, reads miss and writes are dropped, quickly
and with one warning, instead of raising into a page that PostgreSQL alone can serve."""

from __future__ import annotations

import logging
import time

import pytest
from django.core.cache import caches

from config import throttling
from tests.conftest import free_port


@pytest.fixture
def unreachable_cache(settings, monkeypatch):
    monkeypatch.setattr(throttling, "_cache_down_until", float("-inf"))
    monkeypatch.setattr(throttling, "_last_warning", float("-inf"))
    settings.CACHES = {
        **settings.CACHES,
        "unreachable": {
            "BACKEND": "config.cache.FailOpenRedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/2",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }
    yield caches["unreachable"]
    monkeypatch.setattr(throttling, "_cache_down_until", float("-inf"))


def test_an_unreachable_cache_answers_nothing_cached_and_warns_once(unreachable_cache, caplog):
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="config.throttling"):
        assert unreachable_cache.get("k", "fallback") == "fallback"
        assert unreachable_cache.add("k", 1) is True  # a limit that cannot count lets through
        unreachable_cache.set("k", 1)
        assert unreachable_cache.get_many(["a", "b"]) == {}
        assert unreachable_cache.incr("counter") == 1
        assert unreachable_cache.get_or_set("k", 5) == 5
    assert time.monotonic() - started < 2
    warnings = [r for r in caplog.records if "rate limits are off" in r.getMessage()]
    assert len(warnings) == 1


def test_the_real_cache_still_caches():
    from django.core.cache import cache

    cache.set("fail-open-probe", 42)
    assert cache.get("fail-open-probe") == 42
    assert cache.add("fail-open-probe", 1) is False
    assert cache.incr("fail-open-probe") == 43
