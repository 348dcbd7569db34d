import pytest

from feedback import services


@pytest.fixture
def feature(customer):
    """A public request by the customer of organization A (with the author's upvote)."""
    return services.request_submit(
        author=customer,
        title="Dark mode for the dashboard",
        description="Our support team works nights. **Please**.",
    )
