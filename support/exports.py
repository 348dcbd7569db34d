"""Tickets as CSV: the API's ``GET /api/tickets/export/`` and the queue's bulk action.

One row per ticket with its reference, subject, state, people, times and tags, then one
column per active custom field (its label). The rows are read in chunks
(``iterator(chunk_size=…)`` with the tags prefetched per chunk) and streamed, so a large
export holds one chunk in memory. Cells that a spreadsheet would run as a formula (text
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) are prefixed with
``'`` (CSV injection).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from support.models import CustomField, Ticket

CHUNK_SIZE = 500
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

COLUMNS = (
    "reference",
    "subject",
    "status",
    "priority",
    "type",
    "channel",
    "requester_email",
    "organization",
    "assignee",
    "team",
    "created_at",
    "first_response_at",
    "resolved_at",
    "tags",
)


class _Echo:
    """A file-like object whose ``write`` returns the line (csv.writer into a stream)."""

    def write(self, value: str) -> str:
        return value


def safe_cell(value) -> str:
    """The cell's text; text a spreadsheet would run as a formula starts with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return safe_cell(";".join(str(v) for v in value))
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def _time(value) -> str:
    return value.isoformat() if value is not None else ""


def _custom_value(field: CustomField, values: dict):
    value = (values or {}).get(field.key)
    if value is None:
        return ""
    if field.kind == CustomField.Kind.NUMBER and isinstance(value, int | float):
        return str(value)  # a number: never a formula, even when negative
    return safe_cell(value)


def _rows(queryset: QuerySet[Ticket], fields: list[CustomField]) -> Iterator[list[str]]:
    yield [*COLUMNS, *(field.label for field in fields)]
    tickets = (
        queryset.select_related("requester", "organization", "assignee", "team")
        .prefetch_related("tags")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    for ticket in tickets:
        requester = ticket.requester
        yield [
            safe_cell(ticket.reference),
            safe_cell(ticket.subject),
            ticket.status,
            ticket.priority,
            ticket.type,
            ticket.channel,
            safe_cell(requester.email or requester.get_username()),
            safe_cell(ticket.organization.name if ticket.organization_id else ""),
            safe_cell(ticket.assignee.get_username() if ticket.assignee_id else ""),
            safe_cell(ticket.team.name if ticket.team_id else ""),
            _time(ticket.created_at),
            _time(ticket.first_response_at),
            _time(ticket.resolved_at),
            safe_cell(";".join(sorted(tag.name for tag in ticket.tags.all()))),
            *(_custom_value(field, ticket.custom_fields) for field in fields),
        ]


def tickets_csv_response(queryset: QuerySet[Ticket], *, filename: str) -> StreamingHttpResponse:
    """The tickets of ``queryset`` (already scoped and filtered) as a streamed CSV file."""
    fields = list(CustomField.objects.filter(is_active=True).order_by("position", "label"))
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _rows(queryset, fields)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
