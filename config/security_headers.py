"""Permissions-Policy on every response: the helpdesk uses no camera, microphone,
location or payment API, so no page (nor anything injected into one) may ask for them.

The value comes from ``PERMISSIONS_POLICY`` in settings (a dict of feature → allow-list,
empty meaning "nobody"). Content-Security-Policy is django-csp's (``csp.middleware``).
"""

from __future__ import annotations

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin

HEADER = "Permissions-Policy"


def _header_value(policy: dict[str, list[str]]) -> str:
    return ", ".join(f"{feature}=({' '.join(allowed)})" for feature, allowed in policy.items())


class PermissionsPolicyMiddleware(MiddlewareMixin):  # sync and async, like Django's own
    def process_response(self, request, response):
        value = _header_value(getattr(settings, "PERMISSIONS_POLICY", {}))
        if value and HEADER not in response:
            response[HEADER] = value
        return response
