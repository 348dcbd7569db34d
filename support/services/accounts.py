"""People's accounts as support knows them: customers signing up, API tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from core.errors import DomainError
from support.models import CustomerProfile

__all__ = ["api_token_issue", "customer_register"]


@transaction.atomic
def customer_register(
    *,
    username: str,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    organization=None,
    is_org_admin: bool = False,
):
    """Create a customer account and its profile."""
    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise DomainError("This username is taken.", field="username")
    user = User.objects.create_user(
        username=username,
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
    )
    CustomerProfile.objects.create(user=user, organization=organization, is_org_admin=is_org_admin)
    return user


@transaction.atomic
def api_token_issue(*, user) -> str:
    """The user's API token (``Authorization: Token …``), made on first request; the same
    key on every later one. The caller has checked the password (and second factor)."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
