"""Query filters that refuse what they cannot read (400, as for any invalid input).

django-filter's ``BooleanFilter`` reads any value it does not know (``?mine=null``,
``?mine=maybe``) as "no filter" and answers 200 as if the parameter had not been sent. Here
a boolean filter accepts ``true``/``false`` (and ``1``/``0``, ``True``/``False``) and answers
400 for anything else, as the OpenAPI schema says. Views get it through
:class:`DjangoFilterBackend` (``REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]``), and FilterSets
declare it explicitly.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db import models
from django_filters import rest_framework
from rest_framework.exceptions import ValidationError

TRUE = {True, "True", "true", "1"}
FALSE = {False, "False", "false", "0"}


class StrictNullBooleanField(forms.NullBooleanField):
    widget = forms.TextInput  # the raw value, not a select that maps unknowns to None

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise forms.ValidationError("Must be true or false.", code="invalid")

    def validate(self, value):
        pass


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictNullBooleanField


class FilterSet(rest_framework.FilterSet):
    FILTER_DEFAULTS = {
        **rest_framework.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }


class DjangoFilterBackend(rest_framework.DjangoFilterBackend):
    """Also refuses a blank value (``?created_before=``) for a filter that is not free text:
    django-filter would drop it silently, yet no date, number, boolean or choice is blank."""

    filterset_base = FilterSet

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            blank = {
                name: ["Must not be blank."]
                for name, declared in filterset.filters.items()
                if not isinstance(declared, django_filters.CharFilter)
                and "" in request.query_params.getlist(name)
            }
            if blank:
                raise ValidationError(blank)
        return filterset
