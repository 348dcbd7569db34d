"""Backfill or recompute the daily rollups of a date range, with a progress bar."""

from __future__ import annotations

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from analytics import services


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Compute the analytics rollups of every local day from --start to --end (inclusive; "
        "default: yesterday). Safe to run again: each day is rewritten, not added to."
    )

    def add_arguments(self, parser):
        parser.add_argument("--start", type=_date, help="First day, YYYY-MM-DD.")
        parser.add_argument("--end", type=_date, help="Last day, YYYY-MM-DD (default: yesterday).")
        parser.add_argument("--days", type=int, help="Instead of --start: this many days to --end.")

    def handle(self, *args, start=None, end=None, days=None, verbosity=1, **options):
        end = end or services.local_today() - dt.timedelta(days=1)
        if start is None:
            start = end - dt.timedelta(days=(days or 1) - 1)
        elif days is not None:
            raise CommandError("Give --start or --days, not both.")
        if start > end:
            raise CommandError(f"--start {start} is after --end {end}.")
        total = (end - start).days + 1
        rows = 0
        with tqdm(total=total, unit="day", disable=verbosity < 1, file=sys.stderr) as bar:
            for n in range(total):
                day = start + dt.timedelta(days=n)
                bar.set_postfix_str(day.isoformat())
                rows += sum(services.rollup_day(day).values())
                bar.update()
        self.stdout.write(f"Rolled up {total} day(s) from {start} to {end}: {rows} rows written.")
