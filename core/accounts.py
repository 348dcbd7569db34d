"""A verified email address: what a customer needs before opening tickets (portal, chat,
API) and before voting or submitting on the roadmap, so throwaway accounts can stuff
neither. Staff are exempt. Pages show a notice with a "resend" button, the API answers
403 ``{"detail": ..., "code": "email_unverified"}``, the chat socket an error frame with
that code."""

from __future__ import annotations

from functools import wraps

from allauth.account.models import EmailAddress
from django.shortcuts import render

from core.errors import NotPermitted
from core.roles import is_agent

CODE = "email_unverified"
MESSAGE = (
    "Please confirm your email address first: follow the link in the email we sent you, "
    "or ask for a new one."
)


class EmailUnverified(NotPermitted):
    code = CODE

    def __init__(self, message: str = MESSAGE):
        super().__init__(message, code=CODE)


def email_verified(user) -> bool:
    """True for staff, and for people with at least one verified email address."""
    if not (user and user.is_authenticated):
        return False
    if is_agent(user):
        return True
    return EmailAddress.objects.filter(user_id=user.pk, verified=True).exists()


def require_verified_email(user) -> None:
    """Raise :class:`EmailUnverified` unless ``user`` may open tickets and vote."""
    if not email_verified(user):
        raise EmailUnverified()


def verification_required_page(request, *, status: int = 403):
    return render(
        request, "account/verification_required.html", {"message": MESSAGE}, status=status
    )


def verified_email_required(view):
    """For signed-in pages (after ``login_required``): the notice page until verified."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated and not email_verified(request.user):
            return verification_required_page(request)
        return view(request, *args, **kwargs)

    return wrapper
