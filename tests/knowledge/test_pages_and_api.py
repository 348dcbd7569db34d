import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from knowledge import services
from knowledge.models import Article, KnowledgeBaseMetric, SearchLog


@pytest.mark.django_db
def test_help_center_shows_the_category_tree(client, kb, categories):
    html = client.get("/help/").content.decode()

    assert "Help" in html and "Account" in html and "Billing" in html
    assert 'role="search"' in html


@pytest.mark.django_db
def test_article_page_renders_counts_a_view_and_links_related(client, kb):
    article = kb["Reset a forgotten password"]

    response = client.get(f"/help/a/{article.slug}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<strong>Forgot password?</strong>" in html
    assert "Help</a>" in html and "Account</a>" in html  # breadcrumbs
    assert "Related articles" in html
    article.refresh_from_db()
    assert article.view_count == 1
    assert KnowledgeBaseMetric.objects.get(article=article).views == 1


@pytest.mark.django_db
def test_draft_and_beta_pages_are_hidden_from_the_public(client, categories, agent):
    draft = services.article_create(title="Draft", body="d", category=categories["data"])
    beta = services.article_create(
        title="Beta thing", body="b", is_beta=True, publish=True, category=categories["data"]
    )

    assert client.get(f"/help/a/{draft.slug}/").status_code == 404
    assert client.get(f"/help/a/{beta.slug}/").status_code == 404
    client.force_login(agent)
    assert client.get(f"/help/a/{draft.slug}/").status_code == 200


@pytest.mark.django_db
def test_helpful_vote_once_per_session_without_an_account(client, kb):
    article = kb["Invite teammates"]

    for _ in range(3):
        client.post(f"/help/a/{article.slug}/vote/", {"helpful": "yes"})
    response = client.post(f"/help/a/{article.slug}/vote/", {"helpful": "no"}, follow=True)

    article.refresh_from_db()
    assert (article.helpful_count, article.not_helpful_count) == (0, 1)
    assert 'aria-pressed="true"' in response.content.decode()


@pytest.mark.django_db
def test_search_page_highlights_and_logs(client, kb):
    response = client.get("/help/search/", {"q": "export csv rows"})

    html = response.content.decode()
    assert "Export tasks to CSV" in html
    assert "<mark>" in html
    log = SearchLog.objects.get()
    assert (log.query, log.source, log.top_article.title) == (
        "export csv rows",
        "help_center",
        "Export tasks to CSV",
    )
    assert KnowledgeBaseMetric.objects.filter(search_impressions__gte=1).exists()


@pytest.mark.django_db
def test_search_with_no_result_offers_a_ticket(client, kb):
    html = client.get("/help/search/", {"q": "zzzxqv"}).content.decode()

    assert "0 results" in html or "No articles match" in html


@pytest.mark.django_db
def test_api_search(kb):
    response = APIClient().get("/api/search/", {"q": "charged two times", "limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert len(body) <= 2 and body[0]["article"]["title"] == "I was charged twice"
    assert 0 < body[0]["similarity"] <= 1 and body[0]["snippet"]


@pytest.mark.django_db
def test_api_search_validates_its_parameters():
    response = APIClient().get("/api/search/", {"limit": 999})

    assert response.status_code == 400
    assert set(response.json()) == {"q", "limit"}


@pytest.mark.django_db
def test_api_articles_public_read_staff_write(
    categories, customer, agent, django_capture_on_commit_callbacks
):
    services.article_create(title="Hidden draft", body="d", category=categories["data"])
    anonymous = APIClient()
    assert anonymous.get("/api/articles/").json()["results"] == []

    as_customer = APIClient()
    as_customer.force_authenticate(customer)
    payload = {"title": "New", "body": "## Hi\n\nText", "category": "data", "publish": True}
    assert as_customer.post("/api/articles/", payload, format="json").status_code == 403

    as_agent = APIClient()
    as_agent.force_authenticate(agent)
    with django_capture_on_commit_callbacks() as callbacks:
        created = as_agent.post("/api/articles/", payload, format="json")
    assert created.status_code == 201 and created.json()["status"] == "published"
    assert len(callbacks) == 1  # the embedding task
    assert [a["title"] for a in anonymous.get("/api/articles/").json()["results"]] == ["New"]
    bad = as_agent.post("/api/articles/", {"title": "", "category": "nope"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"title", "body", "category"}


@pytest.mark.django_db
def test_deleting_a_category_in_use_is_a_conflict(kb, agent):
    client = APIClient()
    client.force_authenticate(agent)

    response = client.delete("/api/categories/account/")

    assert response.status_code == 409
    assert Article.objects.filter(category__slug="account").exists()


@pytest.mark.django_db
def test_article_list_queries_are_bounded(categories, django_assert_max_num_queries):
    for i in range(25):
        services.article_create(title=f"A{i}", body="b", category=categories["data"], publish=True)

    with django_assert_max_num_queries(3):
        response = APIClient().get("/api/articles/")

    assert response.json()["count"] == 25


@pytest.mark.django_db
def test_admin_article_changelist_queries_are_bounded(
    client, agent, categories, django_assert_max_num_queries
):
    for i in range(30):
        services.article_create(title=f"A{i}", body="b", category=categories["data"])
    client.force_login(agent)

    with django_assert_max_num_queries(12):
        response = client.get("/admin/knowledge/article/")

    assert response.content.decode().count('class="field-title"') == 30


@pytest.mark.django_db
def test_admin_edits_through_services_and_previews(client, agent, categories):
    client.force_login(agent)

    client.post(
        "/admin/knowledge/article/add/",
        {
            "title": "Admin article",
            "summary": "",
            "category": categories["data"].pk,
            "body": "**Bold** <script>x</script>",
            "metrics-TOTAL_FORMS": 0,
            "metrics-INITIAL_FORMS": 0,
        },
    )

    article = Article.objects.get(title="Admin article")
    assert article.slug == "admin-article" and article.content_hash
    page = client.get(f"/admin/knowledge/article/{article.pk}/change/").content.decode()
    assert "<strong>Bold</strong>" in page and "<script>x</script>" not in page


# ---- import ---------------------------------------------------------------------------------


def _jsonl(tmp_path, rows):
    path = tmp_path / "articles.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


@pytest.mark.django_db
def test_import_jsonl_is_idempotent_on_the_external_id(tmp_path, capsys):
    path = _jsonl(
        tmp_path,
        [
            {"article_id": "7", "title": "Sync calendars", "answers": ["Open settings.", "Done."]},
            {"article_id": "8", "title": "Dark mode", "body": "Settings → Appearance."},
        ],
    )

    call_command("import_articles", str(path), "--category", "faq", "--publish", verbosity=0)
    call_command("import_articles", str(path), "--category", "faq", "--publish", verbosity=0)

    assert Article.objects.count() == 2
    article = Article.objects.get(external_id="7")
    assert article.status == "published" and article.category.slug == "faq"
    assert article.body == "Open settings.\n\nDone."
    assert "0 created, 0 updated, 2 unchanged" in capsys.readouterr().out


@pytest.mark.django_db
def test_import_reports_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"article_id": "1", "title": "ok", "body": "b"}\n{"title": "no id"}\n')

    with pytest.raises(CommandError, match=r"bad\.jsonl:2: needs article_id"):
        call_command("import_articles", str(path), verbosity=0)
    assert not Article.objects.exists()


@pytest.mark.django_db
def test_import_a_markdown_folder(tmp_path):
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "refunds.md").write_text("# Refund policy\n\n## Yearly\n\n14 days.")

    call_command("import_articles", str(tmp_path), verbosity=0)

    article = Article.objects.get()
    assert (article.title, article.external_id) == ("Refund policy", "md:billing/refunds.md")
    assert article.body.startswith("## Yearly") and article.status == "draft"


@pytest.mark.django_db
def test_admin_deletes_articles_through_the_service(client, categories):
    from django.contrib.admin.models import DELETION, LogEntry

    from tests.factories import UserFactory

    kept = services.article_create(title="Kept", body="b", category=categories["data"])
    gone = services.article_create(title="Gone", body="b", category=categories["data"])
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    response = client.post(
        "/admin/knowledge/article/",
        {"action": "delete_selected", "post": "yes", "_selected_action": [gone.pk]},
        follow=True,
    )

    assert "Deleted 1 article." in response.content.decode()
    assert list(Article.objects.values_list("title", flat=True)) == [kept.title]
    assert LogEntry.objects.get(action_flag=DELETION).object_repr == "Gone"
