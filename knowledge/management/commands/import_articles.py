"""Load a help center from JSON Lines or a folder of Markdown files."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from config.errors import DomainError
from knowledge import services
from knowledge.models import Article, Category


class Command(BaseCommand):
    help = (
        "Import articles from a .jsonl file (one object a line: article_id, title, and body "
        "or answers[]) or from a folder of .md files (title from the first '# ' heading). "
        "Idempotent: an article with the same external id is updated, not duplicated."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path)
        parser.add_argument(
            "--category", default="imported", help="slug of the category (created if missing)"
        )
        parser.add_argument("--publish", action="store_true", help="publish what is imported")
        parser.add_argument(
            "--embed-now",
            action="store_true",
            help="embed in this process instead of queueing tasks",
        )

    def handle(self, *args, source: Path, category: str, publish: bool, embed_now: bool, **options):
        if not source.exists():
            raise CommandError(f"{source} does not exist.")
        records = list(self._read_folder(source) if source.is_dir() else self._read_jsonl(source))
        if not records:
            raise CommandError(f"No articles found in {source}.")
        target, _ = Category.objects.get_or_create(
            slug=category, defaults={"name": category.replace("-", " ").title()}
        )
        created = updated = 0
        imported: list[int] = []
        for record in tqdm(
            records, desc="importing", unit="article", disable=options["verbosity"] == 0
        ):
            try:
                article, was_created = self._upsert(record, target, publish)
            except DomainError as error:
                raise CommandError(f"{record['external_id']}: {error.message}") from error
            created += was_created
            updated += not was_created
            imported.append(article.pk)
        if embed_now:
            for article_id in tqdm(
                imported, desc="embedding", unit="article", disable=options["verbosity"] == 0
            ):
                services.article_embed(article_id=article_id)
        self.stdout.write(
            self.style.SUCCESS(
                f"{created} created, {updated} updated in category “{target.slug}”"
                + (" (published)" if publish else "")
            )
        )

    @transaction.atomic
    def _upsert(self, record: dict, category: Category, publish: bool):
        existing = Article.objects.filter(external_id=record["external_id"]).first()
        if existing is None:
            article = services.article_create(
                title=record["title"],
                body=record["body"],
                summary=record.get("summary", ""),
                category=category,
                external_id=record["external_id"],
                publish=publish,
            )
            return article, True
        article = services.article_update(
            article=existing,
            title=record["title"],
            body=record["body"],
            summary=record.get("summary", existing.summary),
        )
        if publish:
            article = services.article_publish(article=article)
        return article, False

    def _read_jsonl(self, path: Path):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as error:
                    raise CommandError(f"{path}:{number}: not JSON ({error.msg}).") from error
                external_id = str(data.get("article_id") or data.get("id") or "").strip()
                title = (data.get("title") or "").strip()
                body = data.get("body") or "\n\n".join(
                    str(a).strip() for a in data.get("answers") or [] if str(a).strip()
                )
                if not external_id or not title or not body:
                    raise CommandError(
                        f"{path}:{number}: needs article_id, title and body (or answers)."
                    )
                yield {
                    "external_id": external_id,
                    "title": title,
                    "body": body,
                    "summary": (data.get("summary") or "")[:300],
                }

    def _read_folder(self, folder: Path):
        for path in sorted(folder.rglob("*.md")):
            text = path.read_text(encoding="utf-8")
            lines = text.splitlines()
            title = next(
                (line[2:].strip() for line in lines if line.startswith("# ")),
                path.stem.replace("-", " ").capitalize(),
            )
            body = "\n".join(line for line in lines if line.strip() != f"# {title}").strip()
            yield {
                "external_id": f"md:{path.relative_to(folder).as_posix()}",
                "title": title,
                "body": body,
            }
