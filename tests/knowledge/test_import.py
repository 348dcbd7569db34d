"""Importing articles: the parser (knowledge.importing), the service
(services.article_import), and its two doors, the command and the admin page."""

import dataclasses
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from core.errors import DomainError
from knowledge import importing, services
from knowledge.models import Article

FRONT_MATTER = """\
---
title: "Refunds: how they work"
slug: refund-policy
summary: When we refund, and how fast.
category: billing-help
external_id: kb-17
status: published
beta: true
tags: [billing, refunds]
date: 2024-05-01
---

## Yearly plans
Within 14 days.
"""
HEADING = "# Dark mode\n\nOpen **Settings → Appearance**.\n"


def snapshot() -> list[tuple]:
    return list(
        Article.objects.order_by("external_id").values_list(
            "external_id", "title", "slug", "summary", "body", "category__slug", "status", "is_beta"
        )
    )


# ---- parsing --------------------------------------------------------------------------------


def test_front_matter_is_read_and_the_body_kept_as_written():
    record = importing.read_markdown(FRONT_MATTER, name="billing/refunds.md")

    assert record == importing.ArticleRecord(
        external_id="kb-17",
        title="Refunds: how they work",
        body="## Yearly plans\nWithin 14 days.\n",
        source="billing/refunds.md",
        summary="When we refund, and how fast.",
        slug="refund-policy",
        category="billing-help",
        publish=True,
        is_beta=True,
        tags=("billing", "refunds"),
    )


def test_without_front_matter_the_title_is_the_first_heading():
    record = importing.read_markdown(HEADING, name="dark-mode.md")

    assert (record.title, record.body, record.external_id) == (
        "Dark mode",
        "Open **Settings → Appearance**.",
        "md:dark-mode.md",
    )
    assert record.summary is record.publish is record.category is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("---\ntitle: [unclosed\n---\nbody", "not valid YAML (line 3)"),
        ("---\ntitle: x\nbody without end", "no closing '---' line"),
        ("---\n- a list\n---\nbody", "'key: value' lines"),
        ("---\ntitle: x\nstatus: live\n---\nbody", "status must be"),
        ("---\ntitle: x\nslug: not a slug\n---\nbody", "slug “not a slug”"),
        ("---\ntitle: x\nbeta: maybe\n---\nbody", "beta must be true or false"),
        ("---\ntitle: x\n---\n\n", "no body"),
        ("# T\n\nnul \x00 here", "Null characters"),
    ],
)
def test_a_bad_markdown_file_names_the_file_and_the_problem(text, problem):
    with pytest.raises(importing.ImportFormatError) as error:
        importing.read_markdown(text, name="bad.md")

    assert error.value.message.startswith("bad.md: ")
    assert problem in error.value.message
    assert error.value.field == "files"


def test_jsonl_reads_the_same_keys_and_names_the_bad_line():
    text = "\n".join(
        [
            json.dumps({"article_id": 7, "title": "A", "answers": ["x", " ", "y"]}),
            "",
            json.dumps({"id": "8", "title": "B", "body": "b", "category": "faq", "publish": True}),
        ]
    )

    first, second = importing.read_jsonl(text, name="f.jsonl")
    with pytest.raises(importing.ImportFormatError, match=r"^f\.jsonl:2: not JSON"):
        importing.read_jsonl('{"article_id": 1, "title": "t", "body": "b"}\n{oops', name="f.jsonl")

    assert (first.external_id, first.body, first.summary, first.source) == (
        "7",
        "x\n\ny",
        "",
        "f.jsonl:1",
    )
    assert (second.category, second.publish, second.source) == ("faq", True, "f.jsonl:3")


def test_a_file_that_is_not_utf8_is_refused():
    with pytest.raises(importing.ImportFormatError, match="not UTF-8"):
        importing.decode(b"\xff\xfe# T", name="x.md")


# ---- the service ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_creates_then_a_second_import_changes_nothing(
    categories, django_capture_on_commit_callbacks
):
    records = [
        importing.read_markdown(FRONT_MATTER, name="refunds.md"),
        importing.read_markdown(HEADING, name="dark-mode.md"),
    ]

    with django_capture_on_commit_callbacks() as callbacks:
        first = services.article_import(records=records, category=categories["data"])
    before = list(Article.objects.order_by("pk").values_list("pk", "updated_at"))
    second = services.article_import(records=records, category=categories["data"], publish=True)
    again = services.article_import(records=records, category=categories["data"], publish=True)

    assert str(first) == "2 created, 0 updated, 0 unchanged"
    assert str(second) == "0 created, 1 updated, 1 unchanged"  # the draft got published
    assert str(again) == "0 created, 0 updated, 2 unchanged"
    assert len(callbacks) == 1  # the embedding of the published one
    refunds = Article.objects.get(external_id="kb-17")
    assert (refunds.slug, refunds.category.name, refunds.is_beta) == (
        "refund-policy",
        "Billing Help",
        True,
    )
    assert refunds.is_published and Article.objects.get(external_id="md:dark-mode.md").is_published
    after = dict(Article.objects.values_list("pk", "updated_at"))
    assert after[before[0][0]] == before[0][1]  # not saved again


@pytest.mark.django_db
def test_an_update_takes_the_new_text_and_keeps_the_slug(categories):
    services.article_import(
        records=[importing.read_markdown(HEADING, name="dark-mode.md")], category="faq"
    )
    edited = HEADING.replace("Appearance", "Theme").replace("# Dark mode", "# Dark theme")

    result = services.article_import(
        records=[importing.read_markdown(edited, name="dark-mode.md")], category="other"
    )

    article = Article.objects.get()
    assert str(result) == "0 created, 1 updated, 0 unchanged"
    assert (article.title, article.slug, article.category.slug) == (
        "Dark theme",
        "dark-mode",
        "faq",
    )
    assert "Theme" in article.body and article.status == "draft"


@pytest.mark.django_db
def test_one_bad_record_imports_nothing(categories):
    records = [
        importing.read_markdown(HEADING, name="ok.md"),
        importing.read_markdown("# Taken\n\nb", name="taken.md"),
    ]
    services.article_create(title="x", slug="taken", body="b", category=categories["data"])
    taken = dataclasses.replace(records[1], slug="taken")

    with pytest.raises(DomainError) as error:
        services.article_import(records=[records[0], taken], category=categories["data"])

    assert error.value.message.startswith("taken.md: An article with the slug “taken”")
    assert Article.objects.count() == 1


@pytest.mark.django_db
def test_the_same_external_id_twice_is_refused(categories):
    record = importing.read_markdown(HEADING, name="a.md")

    with pytest.raises(DomainError, match=r"also the one of a\.md"):
        services.article_import(records=[record, record], category=categories["data"])


@pytest.mark.django_db
def test_embed_now_embeds_what_was_published(categories, local_provider):
    records = importing.read_jsonl(
        json.dumps({"article_id": "1", "title": "Dark mode", "body": "Open settings."}),
        name="f.jsonl",
    )

    services.article_import(
        records=records,
        category=categories["data"],
        publish=True,
        embed_now=True,
        provider=local_provider,
    )

    article = Article.objects.get()
    assert article.embedded_hash == article.content_hash and article.chunks.exists()


# ---- the command and the admin page ---------------------------------------------------------


@pytest.fixture
def markdown_folder(tmp_path):
    (tmp_path / "refunds.md").write_text(FRONT_MATTER, encoding="utf-8")
    (tmp_path / "dark-mode.md").write_text(HEADING, encoding="utf-8")
    return tmp_path


def upload(folder, *names):
    return [
        SimpleUploadedFile(name, (folder / name).read_bytes(), content_type="text/markdown")
        for name in names
    ]


@pytest.mark.django_db
def test_the_command_and_the_admin_page_import_the_same_articles(
    client, agent, categories, markdown_folder
):
    call_command("import_articles", str(markdown_folder), "--category", "data", verbosity=0)
    by_command = snapshot()
    for article in Article.objects.all():
        services.article_delete(article=article)
    client.force_login(agent)

    response = client.post(
        "/admin/knowledge/article/import/",
        {
            "files": upload(markdown_folder, "refunds.md", "dark-mode.md"),
            "category": categories["data"].pk,
        },
        follow=True,
    )

    assert response.status_code == 200
    assert "Imported: 2 created, 0 updated, 0 unchanged." in response.content.decode()
    assert snapshot() == by_command
    assert len(by_command) == 2 and by_command[1][5] == "data"
    assert set(Article.objects.values_list("author__username", flat=True)) == {"agent-a"}


@pytest.mark.django_db
def test_the_admin_page_shows_a_bad_file_as_a_form_error(client, agent, categories):
    client.force_login(agent)
    files = [
        SimpleUploadedFile("good.md", HEADING.encode()),
        SimpleUploadedFile("bad.md", b"---\ntitle: [oops\n---\nbody"),
    ]

    response = client.post(
        "/admin/knowledge/article/import/",
        {"files": files, "category": categories["data"].pk, "publish": "on"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "bad.md: the front matter is not valid YAML" in page
    assert 'class="errorlist' in page
    assert not Article.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("notes.txt", b"# T\n\nb", "only .jsonl and .md files"),
        ("big.md", b"# T\n\n" + b"x" * 2048, "the limit is 1 KB"),
        ("latin1.md", "# Café\n\nb".encode("latin-1"), "not UTF-8"),
    ],
)
def test_the_admin_page_refuses_files_it_cannot_take(
    client, agent, categories, settings, name, content, problem
):
    settings.HELPDESK_ATTACHMENT_MAX_BYTES = 1024
    client.force_login(agent)

    response = client.post(
        "/admin/knowledge/article/import/",
        {"files": [SimpleUploadedFile(name, content)], "category": categories["data"].pk},
    )

    assert response.status_code == 200 and problem in response.content.decode()
    assert not Article.objects.exists()


@pytest.mark.django_db
def test_the_admin_page_is_for_staff_with_a_csrf_token(client, customer, agent, categories):
    client.force_login(customer)
    as_customer = client.get("/admin/knowledge/article/import/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent)

    page = strict.get("/admin/knowledge/article/import/")
    no_token = strict.post(
        "/admin/knowledge/article/import/",
        {
            "files": [SimpleUploadedFile("a.md", HEADING.encode())],
            "category": categories["data"].pk,
        },
    )
    changelist = strict.get("/admin/knowledge/article/").content.decode()

    assert as_customer.status_code == 302 and "/login/" in as_customer["Location"]
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.content.decode()
    assert no_token.status_code == 403
    assert "/admin/knowledge/article/import/" in changelist and "Import articles" in changelist
    assert not Article.objects.exists()
