"""Knowledge base forms: shape only (the help center's search box, the admin's import
page); the services check the rules."""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.conf import settings

from core import limits
from core.forms import DomainErrorFormMixin
from knowledge import importing
from knowledge.models import Category

#: Articles one upload of the admin's import page may hold (it runs in the request);
#: ``import_articles`` takes any number.
MAX_IMPORT_RECORDS = 1_000


class SearchForm(forms.Form):
    q = forms.CharField(
        required=False, max_length=limits.SEARCH_QUERY, label="Search the help center"
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field; cleans to a list."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        items = list(data) if isinstance(data, list | tuple) else ([data] if data else [])
        if not items and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


class ArticleImportForm(DomainErrorFormMixin, forms.Form):
    """Upload a .jsonl file or .md files; ``files`` cleans to the articles they hold
    (:class:`knowledge.importing.ArticleRecord`), or to the first problem found."""

    files = MultipleFileField(
        widget=MultipleFileInput(attrs={"accept": ".jsonl,.ndjson,.md,.markdown"}),
        help_text=(
            "A .jsonl file (one article a line) or .md files (YAML front matter between "
            "'---' lines, or the title from the first '# ' heading)."
        ),
    )
    category = forms.ModelChoiceField(
        queryset=Category.objects.order_by("name"),
        help_text="Where new articles go when their file names no category.",
    )
    publish = forms.BooleanField(
        required=False,
        help_text="Publish what is imported (a file's own status wins); never unpublishes.",
    )

    def clean_files(self) -> list[importing.ArticleRecord]:
        uploads = self.cleaned_data["files"]
        size_limit = settings.HELPDESK_ATTACHMENT_MAX_BYTES
        records: list[importing.ArticleRecord] = []
        for upload in uploads:
            name = PurePath(upload.name).name
            suffix = PurePath(name).suffix.lower()
            if suffix not in importing.MARKDOWN_SUFFIXES + importing.JSONL_SUFFIXES:
                raise forms.ValidationError(f"{name}: only .jsonl and .md files are imported.")
            if upload.size > size_limit:
                raise forms.ValidationError(
                    f"{name} is {upload.size // 1024} KB; the limit is {size_limit // 1024} KB."
                )
            try:
                text = importing.decode(upload.read(), name=name)
                if suffix in importing.MARKDOWN_SUFFIXES:
                    records.append(importing.read_markdown(text, name=name))
                else:
                    records += importing.read_jsonl(text, name=name)
            except importing.ImportFormatError as error:
                raise forms.ValidationError(error.message) from None
            if len(records) > MAX_IMPORT_RECORDS:
                raise forms.ValidationError(
                    f"At most {MAX_IMPORT_RECORDS} articles at a time here; the "
                    "import_articles command takes more."
                )
        if not records:
            raise forms.ValidationError("These files hold no article.")
        return records
