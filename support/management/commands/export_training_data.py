"""Export approved, anonymized training examples for fine-tuning or evaluation."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from support import pii, services
from support.models import TrainingExample
from support.training_export import FORMATS, record


class Command(BaseCommand):
    help = (
        "Write approved, anonymized training examples as JSON Lines in the OpenAI, Anthropic "
        "or this helpdesk's own format, and mark them used. Examples already exported are "
        "left out unless --all is given. Refuses to export (and writes nothing) when any "
        "example still contains personal data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument(
            "--since", help="only examples approved on or after this date (YYYY-MM-DD)"
        )
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")
        parser.add_argument("--all", action="store_true", help="include examples already used")

    def handle(self, *args, format, since=None, output=None, all=False, **options):
        examples = (
            TrainingExample.objects.ready_for_training()
            .select_related("ticket__requester", "ticket__assignee")
            .order_by("reviewed_at", "pk")
        )
        if not all:
            examples = examples.filter(used_in_training=False)
        if since:
            try:
                day = datetime.strptime(since, "%Y-%m-%d").date()
            except ValueError:
                raise CommandError("--since takes a date like 2026-11-01.") from None
            examples = examples.filter(
                reviewed_at__gte=timezone.make_aware(datetime.combine(day, time.min))
            )
        examples = list(examples)

        # Last line of defence: scan again what is about to leave.
        flagged = {}
        for example in examples:
            names = services.ticket_people_names(example.ticket)
            left = set(pii.kinds_in(example.anonymized_question, names=names))
            left |= set(pii.kinds_in(example.anonymized_answer, names=names))
            if left:
                flagged[example.pk] = sorted(left)
        if flagged:
            listing = "; ".join(f"#{pk}: {', '.join(kinds)}" for pk, kinds in flagged.items())
            raise CommandError(
                f"Refusing to export: personal data found in {len(flagged)} example(s) "
                f"({listing}). Edit them in the review queue; nothing was written."
            )

        lines = [json.dumps(record(e, format), ensure_ascii=False) for e in examples]
        with transaction.atomic():
            services.training_examples_mark_exported([e.pk for e in examples])
            self._write(lines, output)
        self.stderr.write(
            self.style.SUCCESS(f"Exported {len(lines)} example(s) in the {format} format.")
        )

    def _write(self, lines: list[str], output: str | None) -> None:
        text = "".join(line + "\n" for line in lines)
        if not output:
            self.stdout.write(text, ending="")
            return
        target = Path(output)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written next to the target and renamed: a failed run leaves no half file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
