"""One ticket-creation budget per person and per client address, shared by every door.

A customer may open at most ``HELPDESK_TICKETS_PER_HOUR_PER_USER`` tickets an hour, and one
client address at most ``HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS``, whichever door they use:
the API, the portal form, the chat socket's ``start`` (and the email channel). Each door
calls :func:`ticket_budget_take` once, after validating its input and before
``services.ticket_open``; a spent budget raises :class:`TicketBudgetSpent`, which each door
shows in its own way (API: 429 with ``Retry-After``; page: the form again with the error;
socket: an ``error`` frame ``rate_limited`` with ``retry_after``). The doors' own limits
(the API's ``ticket_create`` throttle, the socket's message rate) stay in force on top.

Windows are fixed hours (counters in the Django cache, i.e. Redis, that expire with their
hour). Staff (agents and managers) opening tickets, for themselves or on behalf of a
customer, are not counted: they are accountable people working the queue, and a busy
agent logging phone calls must not be stopped. When Redis is away the budget fails open
and logs it, like the API throttles (``config.throttling``).

The client address is ``REMOTE_ADDR`` (for a socket, the ASGI ``client``). Behind a reverse
proxy, name the header the proxy sets in ``HELPDESK_CLIENT_ADDRESS_HEADER`` (e.g.
``X-Forwarded-For`` or ``X-Real-IP``); the last address in it, the one the proxy nearest to
us wrote, is used. Never set it without such a proxy: clients could then pick their address.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import status

from config.throttling import CACHE_ERRORS, cache_down, note_cache_failure
from core.errors import DomainError
from core.roles import is_agent

WINDOW_SECONDS = 3600
KEY_PREFIX = "helpdesk:ticket-budget"


class TicketBudgetSpent(DomainError):
    """Too many tickets opened this hour by this person or from this address."""

    http_status = status.HTTP_429_TOO_MANY_REQUESTS
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after

    def as_dict(self) -> dict:
        return {**super().as_dict(), "retry_after": self.retry_after}


def _header_meta_name(header: str) -> str:
    return "HTTP_" + header.strip().upper().replace("-", "_").removeprefix("HTTP_")


def _last_address(value: str) -> str | None:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    return parts[-1] if parts else None


def client_address(request) -> str | None:
    """The client address of an HTTP request (see the module docstring)."""
    header = getattr(settings, "HELPDESK_CLIENT_ADDRESS_HEADER", "")
    if header:
        forwarded = _last_address(request.META.get(_header_meta_name(header), ""))
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR") or None


def scope_client_address(scope) -> str | None:
    """The client address of an ASGI (WebSocket) connection."""
    header = getattr(settings, "HELPDESK_CLIENT_ADDRESS_HEADER", "")
    if header:
        wanted = header.strip().lower().removeprefix("http_").replace("_", "-").encode()
        for name, value in scope.get("headers") or ():
            if name.lower() == wanted:
                forwarded = _last_address(value.decode("latin-1"))
                if forwarded:
                    return forwarded
    client = scope.get("client")
    return client[0] if client else None


def _cache_key(key: str, now: float, prefix: str = KEY_PREFIX) -> str:
    return f"{prefix}:{key}:{int(now // WINDOW_SECONDS)}"


def hourly_spend(key: str, limit: int, now: float, *, prefix: str = KEY_PREFIX) -> int | None:
    """Count one unit against ``key`` in this hour; seconds to wait if over ``limit`` (the
    refused unit is not counted). Other hourly budgets (the copilot's) use it with their
    own ``prefix``; the caller handles the cache being away (``CACHE_ERRORS``)."""
    window = int(now // WINDOW_SECONDS)
    full_key = _cache_key(key, now, prefix)
    cache.add(full_key, 0, timeout=WINDOW_SECONDS + 60)
    used = cache.incr(full_key)
    if used <= limit:
        return None
    cache.decr(full_key)  # a refused attempt opens nothing: it does not count
    return max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)


def ticket_budget_take(*, user=None, address: str | None = None) -> None:
    """Spend one ticket of ``user``'s and ``address``'s hourly budget, or raise
    :class:`TicketBudgetSpent` (nothing spent) when either is used up. Staff are exempt."""
    if user is not None and getattr(user, "is_authenticated", False) and is_agent(user):
        return
    if cache_down():
        return
    now = time.time()
    spent_keys: list[str] = []
    checks = []
    if user is not None and getattr(user, "pk", None) is not None:
        checks.append((f"user:{user.pk}", settings.HELPDESK_TICKETS_PER_HOUR_PER_USER, "you"))
    if address:
        checks.append(
            (f"addr:{address}", settings.HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS, "your network")
        )
    try:
        for key, limit, who in checks:
            wait = hourly_spend(key, limit, now)
            if wait is not None:
                for done in spent_keys:  # give back what this attempt took
                    cache.decr(_cache_key(done, now))
                minutes = max(1, round(wait / 60))
                raise TicketBudgetSpent(
                    f"Too many new tickets from {who} this hour (at most {limit}). "
                    f"Try again in about {minutes} minute{'s' if minutes != 1 else ''}, "
                    "or reply on one of your open tickets.",
                    retry_after=wait,
                )
            spent_keys.append(key)
    except CACHE_ERRORS as error:
        note_cache_failure("ticket_budget", error)
