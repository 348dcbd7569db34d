"""Optional error reporting to Sentry, on only when ``SENTRY_DSN`` is set.

The settings call :func:`init_sentry` (so the web processes, the Celery worker and beat
all report), with:

- ``DjangoIntegration``: exceptions in views and middleware (WSGI and ASGI requests);
- ``CeleryIntegration``: exceptions in tasks, and the trace of the request that queued them;
- the WebSocket side of Channels, which Django's integration does not see: ``config.asgi``
  wraps the WebSocket application in Sentry's ASGI middleware (:func:`wrap_websocket`).

No integration is switched on automatically beyond Sentry's defaults (logging, threads,
uncaught exceptions): the automatic ones would import the LLM SDKs at every start.
``send_default_pii=False``: no user, cookie, header or client address is sent. Settings:
``SENTRY_ENVIRONMENT``, ``SENTRY_RELEASE``, ``SENTRY_TRACES_SAMPLE_RATE`` (0: errors only).
"""

from __future__ import annotations

import sentry_sdk


def init_sentry(
    *,
    dsn: str,
    environment: str,
    release: str | None = None,
    traces_sample_rate: float = 0.0,
    transport=None,
) -> None:
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    options = {
        "dsn": dsn,
        "environment": environment,
        "release": release,
        "traces_sample_rate": traces_sample_rate,
        "send_default_pii": False,
        "integrations": [DjangoIntegration(), CeleryIntegration()],
        # Only the integrations above (and Sentry's defaults: logging, threads...): the
        # automatic ones would import the LLM SDKs and huggingface_hub in every process at
        # start, seconds of CPU, for spans we do not use.
        "auto_enabling_integrations": False,
    }
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(**options)


def enabled() -> bool:
    return sentry_sdk.get_client().is_active()


def wrap_websocket(application):
    """The WebSocket application, reporting its consumers' exceptions when Sentry is on."""
    if not enabled():
        return application
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware

    return SentryAsgiMiddleware(application)
