"""How accounts meet the helpdesk.

- :class:`AccountAdapter` (django-allauth): a person who signs up becomes a customer
  through support's own service (``customer_register``: the user and its CustomerProfile).
- :func:`login_username` and :func:`lockout_response` (django-axes): which account a
  sign-in names, and the answer while a username+address pair is locked out (a page on the
  portal, 429 JSON with ``Retry-After`` on the API), the same on every door.
- :class:`StaffMfaMiddleware`: with ``HELPDESK_STAFF_REQUIRE_MFA`` a staff member without
  TOTP is sent to set it up before reaching admin.
"""

from __future__ import annotations

import math
from urllib.parse import quote

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from core.roles import is_agent


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        **dict.fromkeys(
            [
                "username_password_mismatch",
                "email_password_mismatch",
                "username_email_password_mismatch",
            ],
            "Please enter a correct username (or email) and password.",
        ),
    }

    def save_user(self, request, user, form, commit=True):
        # allauth fills in the fields (a generated username, email, names, password);
        # the service creates the account with the customer's profile.
        user = super().save_user(request, user, form, commit=False)
        if not commit:
            return user
        from support import services

        return services.customer_register(
            username=user.username,
            email=user.email,
            password=form.cleaned_data["password1"],
            first_name=user.first_name,
            last_name=user.last_name,
        )


def login_username(request, credentials) -> str | None:
    """The account a sign-in attempt names, for axes' per-username counting: the username
    whether the person typed it or their email (so both spellings share one counter);
    what was typed (lower case) when no account matches, so unknown names lock the same."""
    credentials = credentials or {}
    typed = credentials.get("username") or credentials.get("email")
    if not typed:
        data = getattr(request, "data", None) or getattr(request, "POST", {})
        typed = data.get("login") or data.get("username") or data.get("email")
    typed = str(typed or "").strip()
    if not typed:
        return None
    username = (
        get_user_model()
        .objects.filter(Q(username__iexact=typed) | Q(email__iexact=typed))
        .order_by("pk")
        .values_list("username", flat=True)
        .first()
    )
    return (username or typed).lower()


def cooloff_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message() -> str:
    minutes = math.ceil(cooloff_seconds() / 60)
    return (
        f"Too many failed sign-in attempts. Sign-in for this account is paused for "
        f"{minutes} minute{'s' if minutes != 1 else ''}; try again later."
    )


def lockout_response(request, original_response=None, credentials=None):
    """axes' AXES_LOCKOUT_CALLABLE, and the token endpoint's answer while locked out."""
    message = lockout_message()
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message, "code": "locked_out"}, status=429)
    else:
        response = render(request, "account/lockout.html", {"message": message}, status=429)
    response["Retry-After"] = str(cooloff_seconds())
    return response


def has_totp(user) -> bool:
    return Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists()


def second_factor_error(user, code: str | None) -> str | None:
    """What stops ``user`` from getting an API token with ``code`` (None: nothing).

    A token must not be a way around two-factor sign-in: a user with an authenticator app
    sends its current code with the password; with ``HELPDESK_STAFF_REQUIRE_MFA`` staff
    without one are told to set it up first."""
    from allauth.mfa.totp.internal.auth import TOTP

    totp = Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).first()
    if totp is None:
        if settings.HELPDESK_STAFF_REQUIRE_MFA and is_agent(user):
            return "Set up two-factor sign-in (/accounts/2fa/) before asking for an API token."
        return None
    if not code:
        return "Send the current code of your authenticator app as `otp`."
    if not TOTP(totp).validate_code(code):
        return "That code is not valid (or was used already); send the current one."
    return None


class StaffMfaMiddleware:
    """With ``HELPDESK_STAFF_REQUIRE_MFA``, staff reach admin only once TOTP is set up."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            settings.HELPDESK_STAFF_REQUIRE_MFA
            and request.path.startswith(reverse("admin:index"))
            and is_agent(request.user)
            and not has_totp(request.user)
        ):
            messages.warning(
                request,
                "The agent workspace needs two-factor sign-in: set up an authenticator app "
                "first, then go back to the workspace.",
            )
            return redirect(f"{reverse('mfa_activate_totp')}?next={quote(request.get_full_path())}")
        return self.get_response(request)
