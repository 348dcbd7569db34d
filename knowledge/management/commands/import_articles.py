"""Load a help center from JSON Lines or Markdown files (through ``article_import``)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.errors import DomainError
from knowledge import importing, services


class Command(BaseCommand):
    help = (
        "Import articles from a .jsonl file (one object a line: article_id, title, and body "
        "or answers[]), a .md file, or a folder of .md files (YAML front matter between "
        "'---' lines, or the title from the first '# ' heading). Idempotent: an article with "
        "the same external id is updated, not duplicated; one that would not change is left "
        "alone. All or nothing: a bad record imports nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path)
        parser.add_argument(
            "--category",
            default="imported",
            help="slug of the category of articles that name none (created if missing)",
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
        quiet = options["verbosity"] == 0
        try:
            records = importing.read_path(source)
            if not records:
                raise CommandError(f"No articles found in {source}.")
            result = services.article_import(
                records=records,
                category=category,
                publish=publish,
                embed_now=embed_now,
                progress=lambda items, label: tqdm(
                    items, desc=label, unit="article", disable=quiet
                ),
            )
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"{result} (default category “{category}”)" + (" (published)" if publish else "")
            )
        )
