import threading

import pytest

from core.errors import Conflict, DomainError
from knowledge import services
from knowledge.models import Article, ArticleChunk, ArticleVote, KnowledgeBaseMetric
from tests.factories import UserFactory


@pytest.mark.django_db
class TestArticles:
    def test_slug_is_generated_unique_and_stable_on_edit(self, categories):
        first = services.article_create(
            title="Reset your password", body="b", category=categories["account"]
        )
        second = services.article_create(
            title="Reset your password", body="b", category=categories["account"]
        )

        edited = services.article_update(article=first, title="Reset a forgotten password")

        assert (first.slug, second.slug) == ("reset-your-password", "reset-your-password-2")
        assert edited.slug == "reset-your-password"

    def test_markdown_is_rendered_without_script(self, categories):
        article = services.article_create(
            title="T",
            category=categories["data"],
            body="# Hi\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2)) "
            "<img src=x onerror=alert(3)> **bold**",
        )

        html = article.body_html
        assert "<strong>bold</strong>" in html
        assert "<script" not in html and "javascript:" not in html and "onerror" not in html

    @pytest.mark.parametrize(
        ("field", "kwargs"), [("title", {"title": " "}), ("body", {"body": ""})]
    )
    def test_title_and_body_are_required(self, categories, field, kwargs):
        with pytest.raises(DomainError) as error:
            services.article_create(
                **{"title": "T", "body": "B", **kwargs}, category=categories["data"]
            )
        assert error.value.field == field
        assert not Article.objects.exists()

    def test_publishing_and_editing_schedule_embedding_after_commit(
        self, categories, django_capture_on_commit_callbacks
    ):
        article = services.article_create(title="T", body="B", category=categories["data"])
        with django_capture_on_commit_callbacks() as draft_edit:
            services.article_update(article=article, body="B2")
        with django_capture_on_commit_callbacks() as publish:
            services.article_publish(article=article)
        with django_capture_on_commit_callbacks() as same_text:
            services.article_update(article=article, body="B2")
        with django_capture_on_commit_callbacks() as new_text:
            services.article_update(article=article, body="B3")

        assert [len(c) for c in (draft_edit, publish, same_text, new_text)] == [0, 1, 0, 1]

    def test_archiving_twice_is_refused(self, categories):
        article = services.article_create(
            title="T", body="B", category=categories["data"], publish=True
        )
        services.article_archive(article=article)
        with pytest.raises(Conflict):
            services.article_archive(article=article)


@pytest.mark.django_db
class TestEmbedding:
    def test_embedding_is_idempotent_and_follows_edits(self, categories, local_provider):
        article = services.article_create(
            title="Invite teammates",
            category=categories["account"],
            publish=True,
            body="## Invite\n\nSettings → Members.\n\n## Roles\n\nOwner, Admin, Member.",
        )

        assert services.article_embed(article_id=article.pk, provider=local_provider) == (
            "embedded"
        )
        chunks = list(article.chunks.values_list("pk", "heading", "embedding_model"))
        assert services.article_embed(article_id=article.pk, provider=local_provider) == (
            "unchanged"
        )
        assert list(article.chunks.values_list("pk", "heading", "embedding_model")) == chunks
        # The title alone first (search matches questions against it), then the passages.
        assert [h for _, h, _ in chunks] == ["", "Invite", "Roles"]
        assert all(m == "all-MiniLM-L6-v2" for _, _, m in chunks)

        services.article_update(article=article, body="## Invite\n\nSettings → People.")
        assert services.article_embed(article_id=article.pk, provider=local_provider) == (
            "embedded"
        )
        assert list(article.chunks.order_by("ordinal").values_list("heading", flat=True)) == [
            "",
            "Invite",
        ]
        assert (
            services.article_embed(article_id=article.pk, provider=local_provider, force=True)
            == "embedded"
        )
        article.refresh_from_db()
        assert article.embedding_state("all-MiniLM-L6-v2") == "embedded"
        assert article.embedding_state("another-model") == "stale"

    def test_chunk_vectors_are_unit_length_384_dimensions(self, categories, local_provider):
        article = services.article_create(
            title="T", body="Some text.", publish=True, category=categories["data"]
        )
        services.article_embed(article_id=article.pk, provider=local_provider)

        vector = list(ArticleChunk.objects.get(article=article, ordinal=1).embedding)
        assert len(vector) == 384
        assert sum(x * x for x in vector) == pytest.approx(1.0, abs=1e-4)

    @pytest.mark.django_db(transaction=True)
    def test_an_edit_during_embedding_wins(self, categories, local_provider):
        article = services.article_create(
            title="T", body="Old text.", publish=True, category=categories["data"]
        )

        class EditsMeanwhile:
            model_name = local_provider.model_name

            def embed_documents(self, texts):
                # Another request saves new text while the vectors are computed.
                thread = threading.Thread(
                    target=lambda: services.article_update(article=article, body="New text.")
                )
                thread.start()
                thread.join()
                return local_provider.embed_documents(texts)

        outcome = services.article_embed(article_id=article.pk, provider=EditsMeanwhile())

        assert outcome == "changed"
        assert not article.chunks.exists()

    def test_drafts_are_not_embedded(self, categories, local_provider):
        article = services.article_create(title="T", body="B", category=categories["data"])

        assert services.article_embed(article_id=article.pk, provider=local_provider) == ("skipped")


@pytest.mark.django_db
class TestVotesAndMetrics:
    def test_one_vote_per_user_and_changing_ones_mind(self, kb):
        article = kb["Invite teammates"]
        user = UserFactory(username="voter")

        assert services.article_vote(article=article, helpful=True, user=user)
        assert not services.article_vote(article=article, helpful=True, user=user)
        assert services.article_vote(article=article, helpful=False, user=user)

        article.refresh_from_db()
        assert (article.helpful_count, article.not_helpful_count) == (0, 1)
        assert ArticleVote.objects.filter(article=article).count() == 1

    def test_anonymous_votes_count_once_per_session(self, kb):
        article = kb["Invite teammates"]

        services.article_vote(article=article, helpful=True, session_key="s1")
        services.article_vote(article=article, helpful=True, session_key="s1")
        services.article_vote(article=article, helpful=True, session_key="s2")

        article.refresh_from_db()
        assert article.helpful_count == 2

    def test_metrics_are_upserted_per_article_and_day(self, kb):
        article = kb["Invite teammates"]

        services.article_view(article=article)
        services.article_view(article=article)
        services.ai_references_record([article.pk, article.pk])
        services.metric_increment([article.pk], search_impressions=3)

        metric = KnowledgeBaseMetric.objects.get(article=article)
        assert (metric.views, metric.ai_references, metric.search_impressions) == (2, 1, 3)
        article.refresh_from_db()
        assert article.view_count == 2
