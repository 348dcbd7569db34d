"""What the dashboard pages show: each chart is a table of numbers first.

A :class:`Chart` holds its rows and columns; the page draws it with Chart.js (from the
JSON of :meth:`Chart.config`), shows the same rows in an accessible table and offers them
as CSV (:meth:`Chart.csv_response`). Formatting lives here, not in templates.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpResponse


def duration(seconds: float | None) -> str:
    """1 h 05 min, 12 min, 40 s."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def money(value) -> str:
    return "—" if value is None else f"${Decimal(value):,.4f}"


def number(value, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


@dataclass
class Column:
    key: str
    label: str
    kind: str = "number"  # number, decimal, percent, money, duration, text, date
    chart: bool = False  # drawn as a series (the first column is the x axis)
    axis: str = "y"  # y or y2: a second scale for series of another unit

    def format(self, value) -> str:
        if self.kind == "percent":
            return percent(value)
        if self.kind == "money":
            return money(value)
        if self.kind == "duration":
            return duration(value)
        if self.kind == "decimal":
            return number(value, 2)
        if self.kind == "number":
            return number(value)
        if isinstance(value, dt.date):
            return value.isoformat()
        return "—" if value in (None, "") else str(value)

    def plain(self, value):
        """The value for charts and CSV: numbers as numbers, dates as ISO text."""
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, dt.date):
            return value.isoformat()
        return value


@dataclass
class Chart:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict]
    kind: str = "line"  # line or bar
    description: str = ""
    goal: float | None = None  # a horizontal goal line (same unit as the y axis)
    goal_label: str = ""
    stacked: bool = False
    draw: bool = True  # False: a table only

    @property
    def table(self) -> list[list[str]]:
        return [[c.format(row.get(c.key)) for c in self.columns] for row in self.rows]

    def config(self) -> dict:
        x, series = self.columns[0], [c for c in self.columns if c.chart]
        return {
            "type": self.kind,
            "title": self.title,
            "labels": [x.format(row.get(x.key)) for row in self.rows],
            "datasets": [
                {
                    "label": c.label,
                    "data": [c.plain(row.get(c.key)) for row in self.rows],
                    "unit": c.kind,
                    "axis": c.axis,
                }
                for c in series
            ],
            "goal": self.goal,
            "goalLabel": self.goal_label,
            "stacked": self.stacked,
        }

    def csv_response(self, *, start: dt.date, end: dt.date) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        filename = f"{self.name}-{start.isoformat()}-{end.isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        writer = csv.writer(response)
        writer.writerow([c.label for c in self.columns])
        for row in self.rows:
            values = [c.plain(row.get(c.key)) for c in self.columns]
            writer.writerow(["" if value is None else value for value in values])
        return response
