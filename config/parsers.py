"""The API's request parsers (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``): DRF's, made
strict about what can be stored (``core.limits``).

Each answers 400 ``{"detail": ..., "code": ...}`` (a ``ParseError``) instead of letting
the view run, for:

- JSON: a NUL (``\\u0000``) or a lone surrogate (``\\ud800``) in any string or key,
  nesting deeper than ``core.limits.MAX_JSON_DEPTH`` (Python's parser would otherwise
  recurse until ``RecursionError``, a 500), bytes that are not UTF-8, ``NaN``/``Infinity``;
- forms and multipart: a NUL in any field's value or name (PostgreSQL refuses NUL in text,
  and lookups such as a slug would fail with a 500 before any validator ran).
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation

from core import limits


def _parse_error(error: limits.InvalidInput) -> ParseError:
    return ParseError(error.message, code=error.code)


def _check_form(data) -> None:
    for key, values in data.lists():
        for text in (key, *(v for v in values if isinstance(v, str))):
            problem = limits.bad_character_message(text)
            if problem:
                raise ParseError(problem, code=limits.INVALID_CHARACTERS)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as error:
            raise ParseError(
                f"JSON parse error - the body is not valid {encoding}.", code="parse_error"
            ) from error
        except LookupError as error:
            raise ParseError(f"Unknown charset {encoding!r}.", code="parse_error") from error
        try:
            data = json.loads(text, parse_constant=json_strict_constant if self.strict else None)
        except RecursionError as error:
            raise ParseError(limits.DEPTH_MESSAGE, code="too_deep") from error
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}", code="parse_error") from error
        try:
            limits.check_json(data)
        except limits.InvalidInput as error:
            raise _parse_error(error) from error
        return data


def json_strict_constant(value):
    raise ValueError(f"Out of range float values are not permitted: {value!r}")


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check_form(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        _check_form(parsed.data)
        return parsed


#: DRF's stock parsers and their strict stand-ins.
STRICT = {
    parsers.JSONParser: JSONParser,
    parsers.FormParser: FormParser,
    parsers.MultiPartParser: MultiPartParser,
}


class StrictContentNegotiation(DefaultContentNegotiation):
    """``DEFAULT_CONTENT_NEGOTIATION_CLASS``: views that name DRF's stock parsers
    themselves (``ObtainAuthToken``, third-party views) parse with the strict ones too."""

    def select_parser(self, request, parsers):
        parser = super().select_parser(request, parsers)
        strict = STRICT.get(type(parser))
        return strict() if strict is not None else parser
