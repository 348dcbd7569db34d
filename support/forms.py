"""Portal forms. They validate shape; the services validate the rules and their errors
are put back on the form's fields."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from config.errors import DomainError
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


class DomainErrorFormMixin:
    def add_domain_error(self, error: DomainError) -> None:
        field = error.field if error.field in self.fields else None
        self.add_error(field, error.message)


class SignUpForm(UserCreationForm):
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(help_text="We send replies to your tickets here.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "first_name", "last_name", "email")

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists.")
        return email


class TicketForm(DomainErrorFormMixin, forms.Form):
    subject = forms.CharField(max_length=200)
    type = forms.ChoiceField(
        label="What is it about?", choices=TicketType.choices, initial=TicketType.GENERAL
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What happened, what you expected, and any steps.",
    )
    attachments = MultipleFileField(help_text="Screenshots or files, up to 10 MB each.")


class ReplyForm(DomainErrorFormMixin, forms.Form):
    body = forms.CharField(label="Your reply", widget=forms.Textarea(attrs={"rows": 4}))
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
        max_length=2000,
        label="Anything to add? (optional)",
    )


class EscalateForm(DomainErrorFormMixin, forms.Form):
    reason = forms.CharField(
        label="What should a person look at?", widget=forms.Textarea(attrs={"rows": 2})
    )
