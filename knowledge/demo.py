"""Demo help center (Flowboard, ``knowledge/demo_content.py``): idempotent by slug and
external id. Publishing queues each article's embedding, done by the Celery worker."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from knowledge import services
from knowledge.demo_content import ARTICLES, CATEGORIES
from knowledge.models import Article, Category


@transaction.atomic
def load_demo_knowledge() -> int:
    categories: dict[str, Category] = {}
    for slug, name, icon, description, parent, order in CATEGORIES:
        categories[slug], _ = Category.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "icon": icon,
                "description": description,
                "parent": categories.get(parent),
                "display_order": order,
            },
        )
    author = get_user_model().objects.filter(username="admin").first()
    created = 0
    for spec in ARTICLES:
        external_id = f"demo:{spec['title']}"[:100]
        if Article.objects.filter(external_id=external_id).exists():
            continue
        services.article_create(
            title=spec["title"],
            body=spec["body"],
            summary=spec["summary"],
            category=categories[spec["category"]],
            author=author,
            is_beta=spec["beta"],
            external_id=external_id,
            publish=True,
        )
        created += 1
    return created
