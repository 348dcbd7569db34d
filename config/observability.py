"""Structured logging with a request id on every request and every Celery task.

The id lives in a context variable. :class:`RequestIdMiddleware` takes it from an
incoming ``X-Request-ID`` header (when well formed) or makes one, returns it in the
response header and logs one line per request. Celery's publish signal copies the id into
the task's headers, and the prerun signal restores it in the worker (falling back to the
task id), so a ticket's web request and the AI analysis it queued share one id in the logs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
HEADER = "X-Request-ID"
TASK_HEADER = "request_id"

logger = logging.getLogger("helpdesk.request")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``%(request_id)s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the extra fields passed to the logger."""

    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class RequestIdMiddleware:
    """Assigns the request id, echoes it in the response and logs the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(HEADER, "")
        request_id = incoming if _VALID_ID.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        request.request_id = request_id
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


def connect_celery_signals() -> None:
    """Carry the request id from the publisher to the worker."""
    from celery.signals import before_task_publish, task_postrun, task_prerun

    @before_task_publish.connect(weak=False)
    def _add_request_id(headers=None, **_):
        if headers is not None and request_id_var.get() != "-":
            headers.setdefault(TASK_HEADER, request_id_var.get())

    @task_prerun.connect(weak=False)
    def _set_request_id(task_id=None, task=None, **_):
        incoming = getattr(task.request, TASK_HEADER, None) if task else None
        task.request._helpdesk_token = request_id_var.set(incoming or task_id or "-")

    @task_postrun.connect(weak=False)
    def _reset_request_id(task=None, **_):
        token = getattr(task.request, "_helpdesk_token", None) if task else None
        if token is not None:
            request_id_var.reset(token)
