"""Input serializers that take JSON's types at their word.

DRF is lenient on input: a text field takes ``0`` (as ``"0"``), a boolean field takes ``0``
and ``"no"``, an integer field takes ``"5"``, a relation takes ``""`` (as null), and a text
is measured after its surrounding whitespace is trimmed. The OpenAPI schema promises types
and lengths, so :class:`StrictInputMixin` refuses, with the field's 400 message, a JSON
value of the wrong type and a text longer than the field's ``max_length``. Form and
multipart bodies, and query parameters read by a serializer, carry only text: there a
boolean must read ``true`` or ``false``, as the schema's JSON spelling (and browsers' forms)
do, and only a text field may be blank.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.relations import PrimaryKeyRelatedField, RelatedField, SlugRelatedField

FORM_BOOLEANS = {"true", "false", "True", "False"}


def _type_error(field, value, *, form: bool) -> str | None:
    if value is None:
        return None
    if form and value == "" and not isinstance(field, serializers.CharField):
        return "Must not be blank."
    # DRF trims whitespace before it measures; the schema's maxLength is the text sent.
    limit = getattr(field, "max_length", None) if isinstance(field, serializers.CharField) else None
    if limit and isinstance(value, str) and len(value) > limit:
        return f"Ensure this field has no more than {limit} characters."
    if isinstance(field, serializers.BooleanField):
        if form:
            return None if value in FORM_BOOLEANS else "Must be true or false."
        return None if isinstance(value, bool) else "Must be a boolean."
    if form:
        return None
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        # DRF's list of texts takes 0 as "0": check every item as its own field.
        return next(
            (m for item in value if (m := _type_error(field.child, item, form=False))), None
        )
    if isinstance(field, serializers.ChoiceField) and not isinstance(
        field, serializers.MultipleChoiceField
    ):
        # The schema's enum has the choices' own type: integers for integer choices.
        if field.choices and all(
            isinstance(c, int) and not isinstance(c, bool) for c in field.choices
        ):
            ok = isinstance(value, int) and not isinstance(value, bool)
            return None if ok else "Must be an integer."
        return None if isinstance(value, str) else "Must be a string."
    if isinstance(field, serializers.CharField):
        return None if isinstance(value, str) else "Must be a string."
    if isinstance(field, serializers.IntegerField):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "Must be an integer."
    if isinstance(field, RelatedField) and value == "":
        return "Must not be blank (send null for none)."
    if isinstance(field, SlugRelatedField) and not isinstance(value, str):
        return "Must be a string."
    if isinstance(field, PrimaryKeyRelatedField) and (
        isinstance(value, bool) or not isinstance(value, int)
    ):
        return "Must be an integer."
    return None


class StrictInputMixin:
    """For a (Model)Serializer that reads request bodies: see the module docstring."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            form = isinstance(data, QueryDict)
            errors = {}
            for name, field in self.fields.items():
                if field.read_only or name not in data:
                    continue
                message = _type_error(field, data[name], form=form)
                if message:
                    errors[name] = [message]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
