"""The demo help center: Markdown files with front matter under knowledge/demo/, loaded
through article_import."""

import pytest

from knowledge import demo
from knowledge.models import Article, Category

TOUR = "01-take-a-five-minute-tour-of-flowboard.md"


@pytest.mark.django_db
def test_the_demo_loader_creates_exactly_the_demo_articles(django_capture_on_commit_callbacks):
    files = sorted(demo.ARTICLES_DIR.glob("*.md"))

    with django_capture_on_commit_callbacks() as callbacks:
        created = demo.load_demo_knowledge()

    assert created == len(files) == Article.objects.count() == 54
    assert len(callbacks) == len(files)  # each article's embedding, queued
    assert Category.objects.count() == len(demo.demo_categories()) == 14
    assert not Article.objects.exclude(status="published").exists()
    assert set(Article.objects.values_list("external_id", flat=True)) == {
        f"demo:{title}"[:100] for title in Article.objects.values_list("title", flat=True)
    }
    assert Article.objects.filter(is_beta=True).count() == 3
    assert Category.objects.get(slug="billing-plans-subscription").parent.slug == "billing-plans"


@pytest.mark.django_db
def test_a_demo_article_is_its_file(django_capture_on_commit_callbacks):
    demo.load_demo_knowledge()
    text = (demo.ARTICLES_DIR / TOUR).read_text(encoding="utf-8")

    article = Article.objects.get(title="Take a five-minute tour of Flowboard")

    assert text.startswith("---\ntitle: Take a five-minute tour of Flowboard\n")
    assert article.body == text.split("\n---\n", 1)[1]
    assert article.body.startswith("## How Flowboard is organised\n")
    assert article.body.endswith("so you don't start from a blank board.\n")
    assert (article.slug, article.category.slug, article.summary) == (
        "take-a-five-minute-tour-of-flowboard",
        "getting-started",
        "A quick overview of workspaces, projects, tasks and views in Flowboard.",
    )


@pytest.mark.django_db
def test_loading_the_demo_twice_changes_nothing_and_keeps_edits():
    demo.load_demo_knowledge()
    edited = Article.objects.get(title="Keyboard shortcuts")
    Article.objects.filter(pk=edited.pk).update(body="An agent's edit.")
    before = list(Article.objects.order_by("pk").values_list("pk", "updated_at", "body"))

    assert demo.load_demo_knowledge() == 0
    assert list(Article.objects.order_by("pk").values_list("pk", "updated_at", "body")) == before


def test_demo_articles_are_plain_records_for_benchmarks():
    articles = demo.demo_articles()

    assert len(articles) == 54
    assert set(articles[0]) == {"title", "category", "summary", "beta", "body"}
    assert articles[0]["title"] == "Take a five-minute tour of Flowboard"
