"""Portal forms. They validate shape; the services validate the rules and their errors
are put back on the form's fields."""

from __future__ import annotations

from django import forms

from core import limits
from core.forms import DomainErrorFormMixin
from support.models import TicketType


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class SignUpForm(forms.Form):
    """What allauth's sign-up form asks besides email and password
    (``ACCOUNT_SIGNUP_FORM_CLASS``); the adapter saves it through ``customer_register``."""

    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150, required=False)

    def signup(self, request, user) -> None:
        """Nothing left to do: support.adapters.AccountAdapter saved the names."""


class TicketForm(DomainErrorFormMixin, forms.Form):
    subject = forms.CharField(max_length=limits.SUBJECT)
    type = forms.ChoiceField(
        label="What is it about?", choices=TicketType.choices, initial=TicketType.GENERAL
    )
    description = forms.CharField(
        max_length=limits.TICKET_DESCRIPTION,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What happened, what you expected, and any steps.",
    )
    attachments = MultipleFileField(help_text="Screenshots or files, up to 10 MB each.")


class ReplyForm(DomainErrorFormMixin, forms.Form):
    body = forms.CharField(
        label="Your reply",
        max_length=limits.MESSAGE_BODY,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    attachments = MultipleFileField()


class RateForm(DomainErrorFormMixin, forms.Form):
    rating = forms.TypedChoiceField(
        label="How satisfied are you with the outcome?",
        choices=[(n, str(n)) for n in range(5, 0, -1)],
        coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=limits.COMMENT,
        label="Anything to add? (optional)",
    )


class EscalateForm(DomainErrorFormMixin, forms.Form):
    reason = forms.CharField(
        label="What should a person look at?",
        max_length=limits.REASON,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
