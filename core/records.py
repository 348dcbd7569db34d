"""Rows of a labelled file for the evaluation and training commands: JSON Lines (one
object a line) or CSV with a header row. Errors are ``CommandError`` naming the file and
the line, so a command can let them through to its user."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from django.core.management.base import CommandError


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        raise CommandError(f"{path} does not exist.")
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise CommandError(f"{path}:{number}: not JSON ({error.msg}).") from error
    return rows
