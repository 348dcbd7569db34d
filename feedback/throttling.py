"""Rate limits on submitting requests and voting, shared by the pages and the API.

Both use DRF's cache-backed sliding window with the rates of
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``feedback_submit``, ``feedback_vote``), keyed
by user (or client address), so a client cannot dodge a limit by switching between the
roadmap page and the API. Like the API's own limits they fail open (``config.throttling``):
with Redis away a vote or a request goes through, and the log says the limits are off.
"""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from config.throttling import FailOpenMixin

SUBMIT = "feedback_submit"
VOTE = "feedback_vote"


class FeedbackThrottle(FailOpenMixin, SimpleRateThrottle):
    """A throttle for one scope; works on a Django ``HttpRequest`` or a DRF ``Request``."""

    def __init__(self, scope: str):
        self.scope = scope
        super().__init__()

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        ident = user.pk if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def allow(request, scope: str) -> tuple[bool, float | None]:
    """Count this request against ``scope``; answers (allowed, seconds to wait if not)."""
    throttle = FeedbackThrottle(scope)
    if throttle.allow_request(request, None):
        return True, None
    return False, throttle.wait()
