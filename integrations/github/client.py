"""PyGithub, configured from settings, and GitHub's errors sorted into what to do next.

PyGithub's own retry and request pacing are turned off: a Celery task must not sleep in a
worker until a rate limit resets. Instead :func:`classify` turns an error into a
:class:`GithubFailure` saying whether to retry and when (the reset time of a rate limit,
``retry-after``, or a backoff for 5xx and network errors) or to stop with a message a
person can act on (bad credentials, unknown repository, validation errors).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
from django.conf import settings
from github import Auth, Github, GithubException
from github.GithubException import BadCredentialsException, UnknownObjectException


class GithubNotConfigured(Exception):
    pass


@dataclass
class GithubFailure(Exception):
    """``retry_in``: seconds to wait before trying again; ``None``: do not retry."""

    message: str
    retry_in: float | None = None
    status: int | None = None

    def __str__(self) -> str:
        return self.message


def configured() -> bool:
    return bool(settings.GITHUB_TOKEN)


def client(*, lazy: bool = False) -> Github:
    if not settings.GITHUB_TOKEN:
        raise GithubNotConfigured("Set GITHUB_TOKEN to send bug tickets to GitHub.")
    return Github(
        auth=Auth.Token(settings.GITHUB_TOKEN),
        base_url=settings.GITHUB_API_URL,
        timeout=settings.GITHUB_TIMEOUT_SECONDS,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
        lazy=lazy,
    )


def repository(full_name: str, *, lazy: bool = True):
    """The repository; ``lazy``: no request until it is used (its attributes unknown)."""
    return client(lazy=lazy).get_repo(full_name)


def _header(headers: dict | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def classify(exc: Exception, *, repository: str = "") -> GithubFailure:
    """What an exception from PyGithub (or the network under it) means for us."""
    if isinstance(exc, GithubFailure):
        return exc
    if isinstance(exc, requests.exceptions.RequestException):
        return GithubFailure(f"GitHub could not be reached: {type(exc).__name__}.", retry_in=30)
    if not isinstance(exc, GithubException):
        raise exc
    status, headers = exc.status, exc.headers or {}
    message = (exc.data or {}).get("message", "") if isinstance(exc.data, dict) else ""
    remaining = _header(headers, "x-ratelimit-remaining")
    retry_after = _header(headers, "retry-after")
    if status in (403, 429) and (
        remaining == "0" or retry_after or "rate limit" in message.lower()
    ):
        if retry_after:
            wait = float(retry_after)
        else:
            reset = float(_header(headers, "x-ratelimit-reset") or time.time() + 60)
            wait = max(reset - time.time(), 1.0)
        until = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + wait))
        return GithubFailure(
            f"GitHub rate limit reached; trying again at {until}.", retry_in=wait, status=status
        )
    if isinstance(exc, BadCredentialsException) or status == 401:
        return GithubFailure(
            "GitHub rejected the token (bad credentials): check GITHUB_TOKEN.", status=status
        )
    if isinstance(exc, UnknownObjectException) or status == 404:
        return GithubFailure(
            f"Repository {repository or '?'} was not found, or the token cannot see it.",
            status=status,
        )
    if status >= 500:
        return GithubFailure(f"GitHub answered {status}; trying again.", retry_in=60, status=status)
    details = "; ".join(
        e.get("message", "") or e.get("code", "")
        for e in ((exc.data or {}).get("errors", []) if isinstance(exc.data, dict) else [])
        if isinstance(e, dict)
    )
    return GithubFailure(
        f"GitHub refused the request ({status}): {message}{' — ' + details if details else ''}",
        status=status,
    )
