import re

import pytest

from feedback import services as feedback_services
from tests.factories import CustomerFactory

LINK = re.compile(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)")


def confirmation_path(mail) -> str:
    """The verification link's path in a sent email."""
    return LINK.search(mail.body).group(1)


@pytest.fixture
def unverified(db):
    """A customer who signed up and has not followed the link yet."""
    return CustomerFactory(username="unverified", email_verified=False)


@pytest.fixture
def feature(customer):
    return feedback_services.request_submit(author=customer, title="Dark mode")
