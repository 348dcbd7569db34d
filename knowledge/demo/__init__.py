"""Demo help center of Flowboard, a fictional project-management SaaS (loaded by
``load_demo_data``): the categories in ``categories.yaml`` and one Markdown file with front
matter per article in ``articles/``, imported through
:func:`knowledge.services.article_import`.

Idempotent: a category or article that exists already (same slug, same external id) is left
as it is, so an agent's edits survive a second load. Publishing queues each new article's
embedding, done by the Celery worker.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.db import transaction

from knowledge import importing, services
from knowledge.models import Article, Category

DEMO_DIR = Path(__file__).resolve().parent
ARTICLES_DIR = DEMO_DIR / "articles"
CATEGORIES_FILE = DEMO_DIR / "categories.yaml"


def demo_categories() -> list[dict]:
    """The categories as data (slug, name, icon, description, parent, display_order),
    parents before children."""
    return yaml.safe_load(CATEGORIES_FILE.read_text(encoding="utf-8"))


def demo_records() -> list[importing.ArticleRecord]:
    """The articles as :func:`knowledge.services.article_import` takes them, in file order."""
    return importing.read_path(ARTICLES_DIR)


def demo_articles() -> list[dict]:
    """The articles as plain data (title, category, summary, beta, body), for benchmarks
    that want real help-center text."""
    return [
        {
            "title": record.title,
            "category": record.category,
            "summary": record.summary,
            "beta": bool(record.is_beta),
            "body": record.body,
        }
        for record in demo_records()
    ]


@transaction.atomic
def load_demo_knowledge() -> int:
    """Create the demo categories and articles that are missing; returns how many articles
    were created."""
    specs = demo_categories()
    categories = {category.slug: category for category in Category.objects.all()}
    for spec in specs:
        if spec["slug"] in categories:
            continue
        categories[spec["slug"]] = services.category_create(
            name=spec["name"],
            slug=spec["slug"],
            icon=spec["icon"],
            description=spec["description"],
            parent=categories[spec["parent"]] if spec["parent"] else None,
            display_order=spec["display_order"],
        )
    records = demo_records()
    present = set(
        Article.objects.filter(external_id__in=[r.external_id for r in records]).values_list(
            "external_id", flat=True
        )
    )
    missing = [record for record in records if record.external_id not in present]
    if not missing:
        return 0
    result = services.article_import(
        records=missing,
        category=categories[specs[0]["slug"]],  # every demo article names its own
        author=get_user_model().objects.filter(username="admin").first(),
    )
    return result.created


def load_demo() -> None:
    """Knowledge's part of ``load_demo_data`` (core): the help center articles."""
    load_demo_knowledge()
