"""Users from before allauth keep signing in and acting: the data migration gives each one
with an email a verified, primary address (one verified owner per shared address)."""

import importlib

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.contrib.auth import get_user_model

from core.accounts import email_verified

pytestmark = pytest.mark.django_db

migration = importlib.import_module("support.migrations.0011_verified_emails_for_existing_users")


def test_existing_users_get_a_verified_primary_address():
    User = get_user_model()
    older = User.objects.create_user("old-timer", "Old@Example.com", "pw-123456789")
    twin = User.objects.create_user("twin", "old@example.com", "pw-123456789")
    no_email = User.objects.create_user("no-email", "", "pw-123456789")

    migration.verify_existing(apps, None)

    address = EmailAddress.objects.get(user=older)
    assert (address.email, address.verified, address.primary) == ("old@example.com", True, True)
    assert email_verified(older)
    assert not email_verified(twin)  # the address belongs to the older account
    assert not EmailAddress.objects.filter(user=no_email).exists()
