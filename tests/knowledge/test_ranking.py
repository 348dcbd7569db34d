"""Learned search rankers: trained from approved examples, versioned, switched by a
setting, and never the reason a search fails."""

import json
import logging

import pytest
from django.core.management import CommandError, call_command

from knowledge import ranking, services
from knowledge.models import Category
from knowledge.search import Scope, search
from support.models import Message, TrainingExample
from support.services import ticket_open

# Each question is answered by a passage of one article while another article's title
# says nearly the same words: the fusion puts the title first; people who answered such
# questions cited the passage.
PAIRS = [
    {
        "question": "which key opens the command palette",
        "answer": ("Keyboard shortcuts", "Press Ctrl+K anywhere to open the command palette."),
        "decoy": (
            "Open the command palette",
            "The palette lists every action. Click the magnifier in the toolbar.",
        ),
    },
    {
        "question": "can my profile photo be a GIF",
        "answer": (
            "Supported image formats",
            "Profile photos and attachments can be PNG, JPEG or GIF, up to 5 MB.",
        ),
        "decoy": (
            "Change your profile photo",
            "Your photo shows beside your comments. Upload a square image.",
        ),
    },
    {
        "question": "where do I change my email address",
        "answer": (
            "Account settings",
            "Change your email address under Settings, then Profile.",
        ),
        "decoy": (
            "Change your email address",
            "We send a confirmation link to the new address.",
        ),
    },
]


def titles(results):
    return [r.article.title for r in results]


@pytest.fixture
def help_center(db, local_provider):
    category = Category.objects.create(name="Help", slug="help")
    articles = {}
    for pair in PAIRS:
        for title, body in (pair["answer"], pair["decoy"]):
            article = services.article_create(
                title=title, body=body, category=category, publish=True
            )
            services.article_embed(article_id=article.pk, provider=local_provider)
            articles[title] = article
    return articles


@pytest.fixture
def rankers(settings, tmp_path):
    settings.HELPDESK_RANKER_DIR = str(tmp_path / "rankers")
    settings.HELPDESK_RANKER = ""
    return tmp_path / "rankers"


def approve_example(customer, question, cited):
    ticket = ticket_open(requester=customer, subject=question, description=question)
    message = Message.objects.create(
        ticket=ticket,
        sender_kind=Message.SenderKind.AI,
        body="See the article.",
        article_ids=[cited.pk],
    )
    return TrainingExample.objects.create(
        ticket=ticket,
        source_message=message,
        ticket_type="general",
        question=question,
        answer="See the article.",
        anonymized_question=question,
        anonymized_answer="See the article.",
        outcome=TrainingExample.Outcome.SUCCESSFUL,
        satisfaction_rating=5,
        author_kind=TrainingExample.AuthorKind.AI,
        status=TrainingExample.Status.APPROVED,
        quality_score=5,
    )


@pytest.mark.django_db
def test_a_ranker_trained_on_approved_examples_puts_the_cited_article_first(
    help_center, rankers, settings, customer, capsys
):
    scope = Scope(include_beta=True)
    before = {p["question"]: titles(search(p["question"], scope=scope)) for p in PAIRS}
    for pair in PAIRS:
        assert before[pair["question"]][0] == pair["decoy"][0]  # the fusion is fooled
        approve_example(customer, pair["question"], help_center[pair["answer"][0]])
    TrainingExample.objects.create(  # not approved: never learned from
        ticket=ticket_open(requester=customer, subject="x", description="x"),
        ticket_type="general",
        question="x",
        answer="x",
        anonymized_question="x",
        anonymized_answer="x",
        outcome=TrainingExample.Outcome.SUCCESSFUL,
        satisfaction_rating=5,
        author_kind=TrainingExample.AuthorKind.AI,
    )

    call_command("train_ranker", "--version", "v1", "--folds", "3", "--l2", "0.0001")

    out = capsys.readouterr().out
    assert "3 training examples, 0 bootstrap questions" in out
    assert "HELPDESK_RANKER=v1" in out
    manifest = json.loads((rankers / "v1" / "manifest.json").read_text())
    assert manifest["version"] == "v1" and manifest["training"]["training_examples"] == 3
    assert manifest["features"] == list(ranking.FEATURES)
    assert manifest["figures"]["ranker_in_sample"]["recall_at_1"] == 1.0

    settings.HELPDESK_RANKER = "v1"
    for pair in PAIRS:
        after = search(pair["question"], scope=scope)
        assert titles(after)[0] == pair["answer"][0] and pair["decoy"][0] in titles(after)
        # What the AI trace shows is still the fusion's evidence.
        assert after[0].semantic_position == 2 and after[0].chunk.article_id == after[0].article.pk

    settings.HELPDESK_RANKER = ""  # switched off: the fusion's order again
    assert titles(search(PAIRS[0]["question"], scope=scope))[0] == PAIRS[0]["decoy"][0]


@pytest.mark.django_db
def test_a_missing_or_broken_ranker_logs_and_search_keeps_the_fusion(
    help_center, rankers, settings, caplog
):
    query = PAIRS[0]["question"]
    fused = titles(search(query, scope=Scope(include_beta=True)))
    (rankers / "broken").mkdir(parents=True)
    (rankers / "broken" / "weights.json").write_text("{not json")
    (rankers / "broken" / "manifest.json").write_text("{}")

    for version in ("gone", "broken"):
        settings.HELPDESK_RANKER = version
        with caplog.at_level(logging.WARNING, logger="knowledge.ranking"):
            assert titles(search(query, scope=Scope(include_beta=True))) == fused
        assert f"Ranker {version!r}" in caplog.text


@pytest.mark.django_db
def test_versions_switch_by_setting_and_the_shipped_default_loads(help_center, rankers, settings):
    query = PAIRS[1]["question"]
    # A hand-made version that trusts passages only, beside one that trusts titles only.
    ranking.store(weights={"passage_similarity": 10.0}, version="passages")
    ranking.store(weights={"title_similarity": 10.0}, version="titles")

    settings.HELPDESK_RANKER = "passages"
    assert titles(search(query, scope=Scope(include_beta=True)))[0] == PAIRS[1]["answer"][0]
    settings.HELPDESK_RANKER = "titles"
    assert titles(search(query, scope=Scope(include_beta=True)))[0] == PAIRS[1]["decoy"][0]

    shipped = ranking.load("default")
    assert set(shipped.weights) == set(ranking.FEATURES)
    assert shipped.manifest["training"]["bootstrap_questions"] > 0
    with pytest.raises(ranking.RankerError, match="already exists"):
        ranking.store(weights={"similarity": 1.0}, version="titles")


@pytest.mark.django_db
def test_evaluate_search_prints_each_method_and_cross_validates(
    tmp_path, help_center, rankers, capsys
):
    for pair in PAIRS:
        for title, _ in (pair["answer"], pair["decoy"]):
            help_center[title].external_id = title.lower().replace(" ", "-")
            help_center[title].save(update_fields=["external_id"])
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps(
                {
                    "query": p["question"],
                    "relevant_article_ids": [p["answer"][0].lower().replace(" ", "-")],
                }
            )
            for p in PAIRS
        )
    )
    ranking.store(weights={"passage_similarity": 10.0}, version="passages")

    call_command(
        "evaluate_search", str(questions), "--ranker", "passages", "--folds", "3", "--json"
    )

    out = capsys.readouterr().out
    for label in ("dense only", "keyword only", "fusion", "fusion + ranker passages"):
        assert label in out
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["n"] == 3
    assert figures["fusion"]["recall_at_1"] == 0.0 and figures["fusion"]["recall_at_5"] == 1.0
    assert figures["ranker"]["recall_at_1"] == 1.0
    # Trained here with the default pull towards the fusion: three questions move it
    # little; the figures are there, in-sample and cross-validated.
    assert figures["ranker_in_sample"]["n"] == figures["ranker_cv"]["n"] == 3


@pytest.mark.django_db
def test_commands_say_clearly_what_is_wrong(tmp_path, rankers):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("evaluate_search", str(tmp_path / "missing.jsonl"))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("train_ranker", "--bootstrap", str(tmp_path / "missing.jsonl"))
    with pytest.raises(CommandError, match="Nothing to train on"):
        call_command("train_ranker")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "no article named"}))
    with pytest.raises(CommandError, match="needs a query and its article"):
        call_command("evaluate_search", str(bad))
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"query": "q", "article_id": "nowhere"}))
    with pytest.raises(CommandError, match="No question names an article"):
        call_command("evaluate_search", str(unknown), "--ranker", "none")
    with pytest.raises(CommandError, match="'gone'"):
        call_command("evaluate_search", str(unknown), "--ranker", "gone")
