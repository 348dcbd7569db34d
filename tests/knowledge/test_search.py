"""Hybrid search with the real local model and real pgvector."""

import pytest

from integrations.embeddings import EmbeddingError
from knowledge import services
from knowledge.search import Scope, keyword_candidates, search
from support.models import Organization
from tests.factories import CustomerFactory

ALL = Scope(include_beta=True)


def titles(results):
    return [r.article.title for r in results]


@pytest.mark.django_db
def test_a_paraphrase_finds_the_article_where_keywords_do_not(kb, local_provider):
    query = "locked out and cannot recall my login credentials"

    keyword_only = search(query, scope=ALL, semantic=False)
    hybrid = search(query, scope=ALL, provider=local_provider)

    assert "Reset a forgotten password" not in titles(keyword_only[:3])
    assert "Reset a forgotten password" in titles(hybrid[:3])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("they took money from my card two times", "I was charged twice"),
        ("too many requests error from the API", "API rate limits and 429 errors"),
        ("how do I get rid of my account", "Delete your account"),
    ],
)
def test_paraphrased_questions_rank_the_right_article_first(kb, local_provider, query, expected):
    results = search(query, scope=ALL, provider=local_provider)

    assert titles(results)[0] == expected
    assert results[0].similarity > 0.4
    assert results[0].chunk.article_id == results[0].article.pk


@pytest.mark.django_db
def test_a_typo_still_finds_the_article(kb, local_provider):
    assert titles(search("pasword reset", scope=ALL, provider=local_provider))[0] == (
        "Reset a forgotten password"
    )


@pytest.mark.django_db
def test_exact_title_and_keyword_work_without_embeddings(categories):
    article = services.article_create(
        title="Export tasks to CSV",
        body="Choose Export → CSV.",
        category=categories["data"],
        publish=True,
    )
    assert not article.chunks.exists()  # never embedded

    class Down:
        model_name = "down"

        def embed_query(self, text):
            raise EmbeddingError("provider unavailable")

    by_title = search("Export tasks to CSV", scope=ALL, provider=Down())
    by_word = search("csv", scope=ALL, provider=Down())

    assert titles(by_title) == ["Export tasks to CSV"] == titles(by_word)
    assert by_title[0].sources == ["keyword"] and by_title[0].similarity is None


@pytest.mark.django_db
def test_an_exact_phrase_from_the_text_is_found(kb, local_provider):
    results = search('"Too Many Requests"', scope=ALL, provider=local_provider)

    assert titles(results)[0] == "API rate limits and 429 errors"


@pytest.mark.django_db
def test_one_result_per_article_with_its_best_chunk_as_snippet(kb, local_provider):
    results = search("API 429 Retry-After", scope=ALL, provider=local_provider)

    assert len(titles(results)) == len(set(titles(results)))
    top = results[0]
    assert "Retry-After" in top.snippet
    assert "<mark>Retry" in top.snippet_html


@pytest.mark.django_db
def test_snippets_are_escaped(categories, local_provider):
    article = services.article_create(
        title="Embedding widgets",
        category=categories["data"],
        publish=True,
        body="Paste <script>alert(1)</script> into your page to embed the widget.",
    )
    services.article_embed(article_id=article.pk, provider=local_provider)

    html = search("embed the widget script", scope=ALL, provider=local_provider)[0].snippet_html

    assert "<script>" not in html and "</script>" not in html
    assert "&lt;<mark>script</mark>&gt;alert(1)" in html


@pytest.mark.django_db
def test_drafts_and_archived_articles_are_never_found(kb, categories, local_provider):
    services.article_create(
        title="Secret roadmap", body="Password manager integration.", category=categories["account"]
    )
    services.article_archive(article=kb["Reset a forgotten password"])

    found = titles(search("password", scope=ALL, provider=local_provider))

    assert "Secret roadmap" not in found and "Reset a forgotten password" not in found
    assert not kb["Reset a forgotten password"].chunks.exists()


@pytest.mark.django_db
def test_beta_articles_only_for_opted_in_organizations_and_staff(categories, local_provider, agent):
    article = services.article_create(
        title="Automations builder (beta)",
        is_beta=True,
        body="Build automations with triggers and actions.",
        category=categories["data"],
        publish=True,
    )
    services.article_embed(article_id=article.pk, provider=local_provider)
    beta_org = Organization.objects.create(name="Early", beta_opt_in=True)
    insider = CustomerFactory(username="insider", profile__organization=beta_org)
    outsider = CustomerFactory(username="outsider")

    def sees(user):
        return "Automations builder (beta)" in titles(
            search("automations triggers", user=user, provider=local_provider)
        )

    assert sees(insider) and sees(agent)
    assert not sees(outsider) and not sees(None)


@pytest.mark.django_db
def test_category_filter_includes_subcategories(kb, categories, local_provider):
    results = search(
        "password",
        scope=Scope.for_user(None, category=categories["billing"]),
        provider=local_provider,
    )

    assert all(r.article.category == categories["billing"] for r in results)
    parent = categories["account"].parent
    assert (
        titles(
            search("password", scope=Scope.for_user(None, category=parent), provider=local_provider)
        )[0]
        == "Reset a forgotten password"
    )


@pytest.mark.django_db
def test_common_word_keyword_search_ranks_a_bounded_set(categories, monkeypatch):
    import knowledge.search as kb_search

    for i in range(30):
        services.article_create(
            title=f"Project tip {i}",
            body="project " * (i + 1),
            category=categories["data"],
            publish=True,
        )
    monkeypatch.setattr(kb_search, "MATCH_CAP", 10)

    hits = keyword_candidates("project", ALL, limit=40)

    assert len(hits) == 10  # only the capped set was ranked


@pytest.mark.django_db
def test_empty_query_returns_nothing(kb):
    assert search("   ", scope=ALL) == []


@pytest.mark.django_db
def test_an_article_found_by_its_title_alone_shows_a_passage_never_the_bare_title(
    kb, local_provider, monkeypatch
):
    # One semantic candidate: the title chunk, nearest of all to a typed-out title.
    monkeypatch.setattr("knowledge.search.SEMANTIC_CANDIDATES", 1)
    monkeypatch.setattr("knowledge.search._semantic_rows.__defaults__", (1,))

    results = search("Invite teammates", scope=ALL, provider=local_provider, keyword=False)

    assert titles(results) == ["Invite teammates"]
    assert results[0].similarity > 0.99
    assert results[0].chunk.ordinal == 1 and "Settings → Members" in results[0].snippet
