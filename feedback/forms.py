"""Roadmap forms: shape only; the services' rules come back as field errors."""

from __future__ import annotations

from django import forms

from core import limits
from core.forms import DomainErrorFormMixin
from feedback.models import FeatureRequest


class RequestForm(DomainErrorFormMixin, forms.Form):
    title = forms.CharField(
        max_length=limits.TITLE, min_length=5, help_text="One line: what should the product do?"
    )
    kind = forms.ChoiceField(
        choices=FeatureRequest.Kind.choices, initial=FeatureRequest.Kind.FEATURE_REQUEST
    )
    description = forms.CharField(
        required=False,
        max_length=limits.FEATURE_DESCRIPTION,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Why you need it and how you work around it today. Markdown works.",
    )


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=limits.SEARCH_QUERY, label="Search requests")
    sort = forms.ChoiceField(
        required=False,
        choices=[("top", "Top weighted"), ("new", "Newest"), ("votes", "Most voted")],
    )
    kind = forms.ChoiceField(
        required=False, choices=[("", "All kinds"), *FeatureRequest.Kind.choices]
    )
