"""Shared by the email tests: the providers' webhooks configured as in production
(anymail's basic auth and Mailgun's signing key), whatever the environment says."""

import pytest
from django.conf import settings as django_settings

SIGNING_KEY = "key-mailgun-signing-test"
TOKEN = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"  # Mailgun's docs example
BASIC_AUTH = "anymail:s3cret-hook"
CONFIGURED = dict(django_settings.ANYMAIL)  # from the environment, before the fixture


@pytest.fixture
def anymail_webhooks(settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "WEBHOOK_SECRET": [BASIC_AUTH]}
