"""Help center forms: shape only."""

from __future__ import annotations

from django import forms

from core import limits


class SearchForm(forms.Form):
    q = forms.CharField(
        required=False, max_length=limits.SEARCH_QUERY, label="Search the help center"
    )
