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

Under ``/api/`` every error answer is JSON in the API's one shape, ``{"detail", "code"}``
(``config.errors``), including those DRF never sees: an unknown URL (404), a 500, a CSRF
failure (403), a body too large (413: Django raises ``RequestDataTooBig`` and would
answer an HTML 400). :class:`InputMiddleware` refuses, before any view, a path or query
string holding a NUL or bytes that are not UTF-8, a query value longer than
``core.limits.QUERY_VALUE`` (400, code ``invalid_characters`` / ``too_long``), and a body
larger than ``core.limits.max_request_bytes()`` (413).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sys
from urllib.parse import unquote_to_bytes

import psycopg
from django import db
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import csrf, defaults
from psycopg_pool import PoolTimeout

from core import limits

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


def api_error(detail: str, code: str, status: int) -> JsonResponse:
    """An API error answered outside DRF, in the API's one shape (``config.errors``)."""
    response = JsonResponse({"detail": detail, "code": code}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@releasing_connections
def server_error(request, *args, **kwargs):
    """``handler500``: a 503 when the error is a database outage, Django's 500 otherwise
    (JSON under ``/api/``)."""
    exception = sys.exc_info()[1]
    if is_database_down(exception):
        log_database_down(request, exception)
        return database_unavailable(request)
    if is_api(request):
        return api_error("A server error occurred.", "server_error", 500)
    return defaults.server_error(request, *args, **kwargs)


@releasing_connections
def page_not_found(request, exception, *args, **kwargs):
    if is_api(request):
        return api_error("Not found.", "not_found", 404)
    return defaults.page_not_found(request, exception, *args, **kwargs)


@releasing_connections
def permission_denied(request, exception, *args, **kwargs):
    if is_api(request):
        message = str(exception) if exception and str(exception) else ""
        return api_error(
            message or "You do not have permission to perform this action.",
            "permission_denied",
            403,
        )
    return defaults.permission_denied(request, exception, *args, **kwargs)


def request_too_large(request) -> HttpResponse:
    from config.errors import too_large_payload

    if is_api(request):
        payload = too_large_payload()
        return api_error(payload["detail"], payload["code"], 413)
    return HttpResponse(
        "<!doctype html><title>Too large</title><h1>413 Request too large</h1>"
        "<p>What you sent is larger than we accept. Send smaller files, or fewer at once.</p>",
        status=413,
    )


@releasing_connections
def bad_request(request, exception, *args, **kwargs):
    """``handler400``: 413 for a body too large (Django calls it a bad request); JSON in
    the API's shape under ``/api/``."""
    if isinstance(exception, RequestDataTooBig):
        return request_too_large(request)
    if is_api(request):
        from config.errors import bad_request_payload

        payload, status = bad_request_payload(exception)
        return api_error(payload["detail"], payload["code"], status)
    return defaults.bad_request(request, exception, *args, **kwargs)


def csrf_failure(request, reason=""):
    """``CSRF_FAILURE_VIEW``: JSON under ``/api/``, Django's page elsewhere."""
    if is_api(request):
        return api_error(f"CSRF Failed: {reason}", "csrf_failed", 403)
    return csrf.csrf_failure(request, reason=reason)


# ======================================================================================
# Input every view may assume: a clean path and query string, a bounded body
# ======================================================================================


_BROKEN_UNICODE = re.compile("%[89A-F][0-9A-F]")


def _path_bytes(request) -> bytes | None:
    """The path as the client sent it, percent-decoded to bytes (None if unknown)."""
    scope = getattr(request, "scope", None)
    if scope is not None:  # ASGI: the server keeps the undecoded path
        raw = scope.get("raw_path")
        return unquote_to_bytes(raw) if raw else None
    # WSGI: Django re-percent-encodes the bytes of the path that are not UTF-8
    # (``repercent_broken_unicode``): such an escape of a byte above 0x7F is one of them.
    if _BROKEN_UNICODE.search(request.path_info):
        return b"\xff"
    return None


def _query_bytes(request) -> bytes:
    query = request.META.get("QUERY_STRING", "")
    try:
        return query.encode("latin-1")  # WSGI, and ASCII (percent-encoded) under ASGI
    except UnicodeEncodeError:
        return query.encode("utf-8", errors="surrogatepass")


def _text_problem(raw: bytes) -> str | None:
    if b"\x00" in raw:
        return limits.NUL_MESSAGE
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "Invalid Unicode (bytes that are not UTF-8) is not allowed."
    return None


def input_problem(request) -> tuple[str, str] | None:
    """Why the path or query string of ``request`` is refused: (message, code), or None."""
    path = _path_bytes(request)
    problem = _text_problem(path) if path is not None else None
    problem = problem or limits.bad_character_message(request.path_info)
    if problem:
        return f"The address: {problem}", limits.INVALID_CHARACTERS
    for part in _query_bytes(request).split(b"&"):
        name, _, value = part.partition(b"=")
        for raw in (name, value):
            decoded = unquote_to_bytes(raw.replace(b"+", b" "))
            problem = _text_problem(decoded)
            if problem:
                return f"The query string: {problem}", limits.INVALID_CHARACTERS
        length = len(unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8"))
        if length > limits.QUERY_VALUE:
            shown = name.decode("latin-1")[:40]
            return (
                f"The query parameter {shown!r}: {limits.too_long_message(limits.QUERY_VALUE)}",
                "too_long",
            )
    return None


class InputMiddleware:
    """Refuses, before any view runs, what no view can serve (module docstring): 400 for a
    path or query string with a NUL, non-UTF-8 bytes or an over-long value, 413 for a body
    larger than anything accepted."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        found = input_problem(request)
        if found is not None:
            message, code = found
            logger.info("refused %s %s: %s", request.method, request.path[:200], code)
            if is_api(request):
                return api_error(message, code, 400)
            return bad_request(request, SuspiciousOperation(message))
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limits.max_request_bytes():
            return request_too_large(request)
        return self.get_response(request)
