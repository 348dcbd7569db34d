"""A clear 503 while PostgreSQL is away, instead of a 500 that looks like a bug.

When the database cannot be reached (stopped, restarting, the pool found no live
connection in time), a request that needs it cannot be served, but nothing is wrong with
it: the client should try again shortly. Every such failure answers **503** with a
``Retry-After`` header:

- under ``/api/``: ``{"detail": "...", "code": "service_unavailable"}`` as JSON;
- elsewhere: ``templates/503.html``, a page rendered without the request (no user, no
  context processor), so it needs no database itself.

Three hooks catch the failure wherever it is raised:

- :class:`DatabaseUnavailableMiddleware` (``process_exception``): in a view, in a
  template it renders, or when a view first touches ``request.user`` or
  ``request.session`` (Django loads both lazily, in the view);
- ``config.errors.api_exception_handler``: the same inside DRF (authentication, throttles,
  the view), as DRF answers its own exceptions before any middleware sees them;
- :func:`server_error` (``handler500``): whatever is raised outside a view: by a
  middleware, by the 404 page (it reads the user), by a session being saved.

Under ASGI Django renders error pages (404, 403, 400, 500) in a worker thread of its own
(``convert_exception_to_response`` uses ``sync_to_async(thread_sensitive=False)``), where
``request_finished`` never closes connections: the connection a page opened to read the
user stayed checked out of the pool for good, and after a PostgreSQL restart it was a dead
one that failed every later error page of that thread. The handlers here give it back
(:func:`releasing_connections`).

Stale pooled connections after PostgreSQL came back are a different problem, handled
where connections are handed out (``config.postgres``: the pool checks each connection
before lending it, and all its idle ones at the first dead one), so the first request
after an outage already succeeds.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys

import psycopg
from django import db
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults
from psycopg_pool import PoolTimeout

logger = logging.getLogger(__name__)

#: What a request meets while PostgreSQL is unreachable. Django wraps the driver's errors
#: (``django.db``); a pool that found no connection in time raises ``PoolTimeout``.
DATABASE_ERRORS = (
    db.OperationalError,
    db.InterfaceError,
    PoolTimeout,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
#: What the client is told to wait before trying again (a restart takes a few seconds).
RETRY_AFTER_SECONDS = 5
MESSAGE = "The service is briefly unavailable (its database cannot be reached). Try again shortly."
CODE = "service_unavailable"


def is_database_down(exception: BaseException | None) -> bool:
    return isinstance(exception, DATABASE_ERRORS)


def log_database_down(request, exception: BaseException) -> None:
    # One line, no traceback: during an outage every request ends here.
    logger.warning(
        "database unavailable: %s %s answered 503 (%s: %s)",
        request.method,
        request.path,
        type(exception).__name__,
        str(exception).strip().splitlines()[0] if str(exception).strip() else "",
        extra={"status": 503},
    )


def is_api(request) -> bool:
    return request.path.startswith("/api/")


def unavailable_payload() -> dict:
    return {"detail": MESSAGE, "code": CODE}


def database_unavailable(request) -> HttpResponse:
    """The 503 answer for ``request``: JSON on the API, the plain page elsewhere."""
    if is_api(request):
        response = JsonResponse(unavailable_payload(), status=503)
    else:
        # No request, so no context processors: the page must not query anything.
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Turns a database outage met by a view into a 503 (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_database_down(exception):
            return None
        log_database_down(request, exception)
        return database_unavailable(request)


def releasing_connections(handler):
    """An error handler that gives back the database connections its thread opened, unless
    they belong to a transaction around it (tests run each test in one)."""

    @functools.wraps(handler)
    def wrapper(request, *args, **kwargs):
        try:
            return handler(request, *args, **kwargs)
        finally:
            for connection in db.connections.all(initialized_only=True):
                if not connection.in_atomic_block:
                    with contextlib.suppress(db.Error):
                        connection.close_if_unusable_or_obsolete()

    return wrapper


@releasing_connections
def server_error(request, *args, **kwargs):
    """``handler500``: a 503 when the error is a database outage, Django's 500 otherwise."""
    exception = sys.exc_info()[1]
    if is_database_down(exception):
        log_database_down(request, exception)
        return database_unavailable(request)
    return defaults.server_error(request, *args, **kwargs)


page_not_found = releasing_connections(defaults.page_not_found)
permission_denied = releasing_connections(defaults.permission_denied)
bad_request = releasing_connections(defaults.bad_request)
