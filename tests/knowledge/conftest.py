import pytest

from knowledge import services
from knowledge.models import Category

ARTICLES = [
    (
        "Reset a forgotten password",
        "account",
        "## Reset it\n\nOn the sign-in page choose **Forgot password?**, enter the email of "
        "your account and follow the link we send. The link works for 30 minutes.\n\n"
        "## No email arrived\n\nCheck the spam folder, then ask us.",
    ),
    (
        "Export tasks to CSV",
        "data",
        "## Export\n\nOpen a project, choose **Export → CSV**. Exports stop at 50,000 rows; "
        "split larger projects by date.\n\n## Timeouts\n\nVery large exports may time out.",
    ),
    (
        "I was charged twice",
        "billing",
        "## Duplicate charges\n\nIf your card shows two identical charges, one is usually a "
        "temporary authorization that disappears within 5 business days. If both are captured "
        "we refund the extra one.",
    ),
    (
        "API rate limits and 429 errors",
        "data",
        "## Limits\n\nEach token may send 10 requests per second. Above that the API answers "
        "`429 Too Many Requests` with a `Retry-After` header.\n\n## Handling 429\n\nWait the "
        "number of seconds in Retry-After, then retry.",
    ),
    (
        "Delete your account",
        "account",
        "## Before you delete\n\nDeleting your account removes every project after a 30-day "
        "grace period.\n\n## Steps\n\nGo to Settings → Account → Delete account.",
    ),
    (
        "Invite teammates",
        "account",
        "## Invite\n\nGo to Settings → Members → Invite and enter their email addresses. Each "
        "member takes a seat.",
    ),
]


@pytest.fixture(scope="session")
def local_provider():
    """The real all-MiniLM-L6-v2, loaded once for the session."""
    from integrations.embeddings import get_provider

    provider = get_provider("local")
    provider.embed_query("warm up")
    return provider


@pytest.fixture
def categories(db):
    root = Category.objects.create(name="Help", slug="help")
    return {
        slug: Category.objects.create(name=slug.title(), slug=slug, parent=root)
        for slug in ("account", "data", "billing")
    }


@pytest.fixture
def kb(categories, local_provider):
    """Published, embedded articles (real model, real pgvector)."""
    articles = {}
    for title, category, body in ARTICLES:
        article = services.article_create(
            title=title, body=body, category=categories[category], publish=True
        )
        services.article_embed(article_id=article.pk, provider=local_provider)
        articles[title] = article
    return articles
