"""Portal forms. They validate shape; the services validate the rules and their errors
are put back on the form's fields."""

from __future__ import annotations

from django import forms

from core import limits
from core.errors import DomainError
from core.forms import DomainErrorFormMixin
from support import custom_fields as cf
from support.models import CustomField, TicketType


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


class DateInput(forms.DateInput):
    input_type = "date"


def custom_form_field(field: CustomField) -> forms.Field:
    """The form input of a custom field; its value is checked by the service
    (``support.custom_fields``), whose errors come back on it."""
    common = {"label": field.label, "help_text": field.help_text, "required": False}
    kind = field.kind
    if kind == CustomField.Kind.CHOICE:
        choices = [("", "—"), *((c, c) for c in field.choices)]
        return forms.ChoiceField(choices=choices, **common)
    if kind == CustomField.Kind.MULTI_CHOICE:
        return forms.MultipleChoiceField(
            choices=[(c, c) for c in field.choices], widget=forms.CheckboxSelectMultiple, **common
        )
    if kind == CustomField.Kind.BOOLEAN:
        return forms.ChoiceField(choices=[("", "—"), ("true", "Yes"), ("false", "No")], **common)
    if kind == CustomField.Kind.NUMBER:
        return forms.CharField(widget=forms.NumberInput(attrs={"step": "any"}), **common)
    if kind == CustomField.Kind.DATE:
        return forms.CharField(widget=DateInput, **common)
    return forms.CharField(max_length=cf.MAX_TEXT, **common)


class CustomFieldsMixin(DomainErrorFormMixin):
    """Adds one input per customer-editable custom field (``cf_<key>``); the service's
    errors by key go back on those inputs."""

    def add_custom_fields(self, definitions, *, values=None, before: str | None = None) -> None:
        self.custom_definitions = [f for f in definitions if f.customer_editable]
        values = values or {}
        for field in self.custom_definitions:
            form_field = custom_form_field(field)
            value = values.get(field.key)
            if value is not None:
                if field.kind == CustomField.Kind.BOOLEAN:
                    value = "true" if value else "false"
                elif field.kind != CustomField.Kind.MULTI_CHOICE:
                    value = cf.display(field, value)
                form_field.initial = value
            form_field.required_for = [
                TicketType(t).label for t in field.required_for_types if t in TicketType.values
            ]
            self.fields[f"cf_{field.key}"] = form_field
        if before and before in self.fields:
            names = [n for n in self.fields if n != before] + [before]
            self.order_fields(names)

    @property
    def custom_field_names(self) -> list[str]:
        return [f"cf_{f.key}" for f in getattr(self, "custom_definitions", [])]

    def custom_values(self, *, changed_only: bool = False) -> dict:
        """The custom field inputs by key (as typed: the service checks them)."""
        return {
            f.key: self.cleaned_data.get(f"cf_{f.key}")
            for f in self.custom_definitions
            if not changed_only or f"cf_{f.key}" in self.changed_data
        }

    def add_domain_error(self, error: DomainError) -> None:
        errors = getattr(error, "errors", None)
        if isinstance(error, cf.CustomFieldError) and errors:
            for key, messages in errors.items():
                name = f"cf_{key}"
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
            return
        super().add_domain_error(error)


class TicketForm(CustomFieldsMixin, forms.Form):
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

    def __init__(self, *args, custom_fields=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.add_custom_fields(custom_fields, before="attachments")


class TicketFieldsForm(CustomFieldsMixin, forms.Form):
    """The ticket page's fields the customer fills in (only those that changed are
    sent to ``ticket_set_custom_fields``)."""

    def __init__(self, *args, custom_fields=(), values=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_custom_fields(custom_fields, values=values)


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
