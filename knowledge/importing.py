"""Reading articles to import, without touching the database: JSON Lines (one object a
line) and Markdown files, with or without YAML front matter. What these functions return,
:func:`knowledge.services.article_import` writes.

JSON Lines: one object a line with ``article_id`` (or ``external_id``, or ``id``),
``title``, and ``body`` or ``answers`` (a list, joined by blank lines); ``summary``
(absent means empty) and the optional keys below.

Markdown: the title is the front matter's ``title``, else the first ``# `` heading (that
line leaves the body, which is then stripped), else the file name. The external id is the
front matter's ``external_id`` (or ``article_id``), else ``md:<path>``. Front matter is
YAML between a first line ``---`` and the next ``---`` (or ``...``) line; after it, the
body is kept as written, blank lines before it aside. Keys read, both in front matter and
in a JSON Lines object: ``slug``, ``summary``, ``category`` (a category's slug),
``status`` (``published`` or ``draft``) or ``publish`` (true/false), ``beta`` (or
``is_beta``), ``tags`` (a list, or words separated by commas). Other keys are ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.core.validators import slug_re

from core import limits
from core.errors import DomainError

MARKDOWN_SUFFIXES = (".md", ".markdown")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
#: ``Article.external_id``, ``Category.slug`` and what ``Article.slug`` leaves for a suffix.
EXTERNAL_ID_MAX = 100
CATEGORY_SLUG_MAX = 100
ARTICLE_SLUG_MAX = 200


class ImportFormatError(DomainError):
    """A source that cannot be read as articles; the message names the file (and line)."""

    def __init__(self, message: str, *, field: str | None = "files", code: str | None = None):
        super().__init__(message, field=field, code=code)


@dataclass(frozen=True)
class ArticleRecord:
    """One article as a source describes it. ``None`` means the source does not say: a
    new article gets the import's default, an existing one keeps what it has."""

    external_id: str
    title: str
    body: str
    source: str = ""  # where it was read, for messages: "faq.jsonl:3", "billing/refunds.md"
    summary: str | None = None
    slug: str | None = None
    category: str | None = None
    publish: bool | None = None
    is_beta: bool | None = None
    tags: tuple[str, ...] = ()


# ---- files ---------------------------------------------------------------------------------


def decode(data: bytes, *, name: str) -> str:
    """UTF-8 text (a byte-order mark is dropped) with ``\\n`` line ends."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFormatError(
            f"{name}: not UTF-8 text (byte {error.start} cannot be read)."
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_path(path: Path) -> list[ArticleRecord]:
    """A folder (every ``.md`` file in it, recursively, in name order), a Markdown file,
    or any other file read as JSON Lines."""
    if path.is_dir():
        return [
            read_markdown(
                decode(file.read_bytes(), name=str(file)), name=file.relative_to(path).as_posix()
            )
            for file in sorted(path.rglob("*.md"))
        ]
    text = decode(path.read_bytes(), name=str(path))
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        return [read_markdown(text, name=path.name)]
    return read_jsonl(text, name=str(path))


# ---- JSON Lines ----------------------------------------------------------------------------


def read_jsonl(text: str, *, name: str) -> list[ArticleRecord]:
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        source = f"{name}:{number}"
        try:
            data = json.loads(line)
            limits.check_json(data)
        except json.JSONDecodeError as error:
            raise ImportFormatError(f"{source}: not JSON ({error.msg}).") from None
        except limits.InvalidInput as error:
            raise ImportFormatError(f"{source}: {error.message}") from None
        if not isinstance(data, dict):
            raise ImportFormatError(f"{source}: needs an object, not {type(data).__name__}.")
        external_id = _identifier(data, ("article_id", "external_id", "id"), source)
        title = _string(data, "title", source) or ""
        body = data.get("body") or "\n\n".join(
            str(a).strip() for a in _answers(data, source) if str(a).strip()
        )
        if not isinstance(body, str):
            raise ImportFormatError(f"{source}: body must be text.")
        if not external_id or not title.strip() or not body.strip():
            raise ImportFormatError(f"{source}: needs article_id, title and body (or answers).")
        records.append(
            ArticleRecord(
                external_id=external_id,
                title=title.strip(),
                body=body,
                source=source,
                summary=(_string(data, "summary", source) or "")[: limits.SUMMARY],
                **_options(data, source),
            )
        )
    return records


def _answers(data: dict, source: str) -> list:
    answers = data.get("answers") or []
    if not isinstance(answers, list):
        raise ImportFormatError(f"{source}: answers must be a list.")
    return answers


# ---- Markdown ------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S | re.M)


def read_markdown(text: str, *, name: str) -> ArticleRecord:
    """One article from a Markdown file; ``name`` is its path in the import (the default
    external id is ``md:<name>``)."""
    meta: dict = {}
    if text.startswith("---") and text.split("\n", 1)[0].strip() == "---":
        match = _FRONT_MATTER.match(text)
        if match is None:
            raise ImportFormatError(f"{name}: the front matter has no closing '---' line.")
        meta = _front_matter(match.group(1), name)
        text = text[match.end() :]
    problem = limits.bad_character_message(text)
    if problem:
        raise ImportFormatError(f"{name}: {problem}")

    title = _string(meta, "title", name)
    if title and title.strip():
        body = text.lstrip("\n")
    else:
        lines = text.splitlines()
        stem = Path(name).stem.replace("-", " ").capitalize()
        title = next((line[2:].strip() for line in lines if line.startswith("# ")), stem)
        body = "\n".join(line for line in lines if line.strip() != f"# {title}").strip()
    if not body.strip():
        raise ImportFormatError(f"{name}: the article has no body.")
    external_id = _identifier(meta, ("external_id", "article_id"), name) or f"md:{name}"
    if len(external_id) > EXTERNAL_ID_MAX:
        raise ImportFormatError(
            f"{name}: the external id is longer than {EXTERNAL_ID_MAX} characters; "
            "give a shorter external_id in the front matter."
        )
    return ArticleRecord(
        external_id=external_id,
        title=title.strip(),
        body=body,
        source=name,
        summary=_string(meta, "summary", name),
        **_options(meta, name),
    )


def _front_matter(text: str, name: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(error, "problem", None) or "cannot be read"
        raise ImportFormatError(
            f"{name}: the front matter is not valid YAML{where}: {problem}."
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ImportFormatError(f"{name}: the front matter must be 'key: value' lines.")
    return data


# ---- fields shared by both formats ---------------------------------------------------------


def _string(data: dict, key: str, source: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ImportFormatError(f"{source}: {key} must be text.")
    problem = limits.bad_character_message(value)
    if problem:
        raise ImportFormatError(f"{source}: {key}: {problem}")
    return value


def _identifier(data: dict, keys: tuple[str, ...], source: str) -> str:
    """The first of ``keys`` present, as text (numbers allowed), or ""."""
    for key in keys:
        value = data.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ImportFormatError(f"{source}: {key} must be text or a number.")
        value = str(value).strip()
        problem = limits.bad_character_message(value)
        if problem:
            raise ImportFormatError(f"{source}: {key}: {problem}")
        if len(value) > EXTERNAL_ID_MAX:
            raise ImportFormatError(f"{source}: {key} is longer than {EXTERNAL_ID_MAX} characters.")
        return value
    return ""


def _slug(data: dict, key: str, source: str, *, max_length: int) -> str | None:
    value = _string(data, key, source)
    if value is None:
        return None
    value = value.strip()
    if not slug_re.match(value) or len(value) > max_length:
        raise ImportFormatError(
            f"{source}: {key} “{value[:50]}” must be letters, digits, hyphens or underscores "
            f"(at most {max_length})."
        )
    return value


def _flag(data: dict, keys: tuple[str, ...], source: str) -> bool | None:
    for key in keys:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise ImportFormatError(f"{source}: {key} must be true or false.")
        return value
    return None


def _publish(data: dict, source: str) -> bool | None:
    status = data.get("status")
    if status is None:
        return _flag(data, ("publish",), source)
    if status not in {"published", "draft"}:
        raise ImportFormatError(f"{source}: status must be “published” or “draft”.")
    return status == "published"


def _tags(data: dict, source: str) -> tuple[str, ...]:
    value = data.get("tags")
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(tag, str | int) for tag in value):
        raise ImportFormatError(f"{source}: tags must be a list of words.")
    return tuple(str(tag).strip() for tag in value if str(tag).strip())


def _options(data: dict, source: str) -> dict:
    return {
        "slug": _slug(data, "slug", source, max_length=ARTICLE_SLUG_MAX),
        "category": _slug(data, "category", source, max_length=CATEGORY_SLUG_MAX),
        "publish": _publish(data, source),
        "is_beta": _flag(data, ("beta", "is_beta"), source),
        "tags": _tags(data, source),
    }
