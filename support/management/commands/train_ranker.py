"""Train a search ranker from approved training examples (and a labelled file to start
with), save it as a new version with its figures, and say how to switch to it."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from integrations.embeddings import get_provider
from knowledge import ranking
from knowledge.management.commands.evaluate_search import (
    read_questions,
    scope_for,
    to_questions,
)
from knowledge.search import RERANK_DEPTH
from support.models import Message, TrainingExample


def training_example_pairs() -> list[ranking.Question]:
    """Approved, PII-free examples as (anonymized question → the articles the answer
    cited): the cited articles of the message the example was taken from, or else of the
    ticket's latest AI message that cited any."""
    examples = TrainingExample.objects.ready_for_training().select_related("source_message")
    cited_by_ticket: dict[int, list[int]] = {}
    for ticket_id, article_ids in (
        Message.objects.filter(
            ticket_id__in=examples.values("ticket_id"), sender_kind=Message.SenderKind.AI
        )
        .exclude(article_ids=[])
        .order_by("created_at", "pk")
        .values_list("ticket_id", "article_ids")
    ):
        cited_by_ticket[ticket_id] = list(article_ids)  # the latest wins
    questions = []
    for example in examples:
        source = example.source_message
        cited = (source.article_ids if source else None) or cited_by_ticket.get(example.ticket_id)
        if cited and example.anonymized_question.strip():
            questions.append(
                ranking.Question(
                    example.anonymized_question, frozenset(cited), group=str(min(cited))
                )
            )
    return questions


class Command(BaseCommand):
    help = (
        "Train a learned search ranker on approved training examples (question → the "
        "articles cited on its ticket) plus, optionally, a labelled file (--bootstrap: "
        "query and relevant_article_ids or article_id), and save it as a new version under "
        "HELPDESK_RANKER_DIR with a manifest: counts, features and figures (in-sample and "
        "article-disjoint cross-validation, beside the fusion alone). Search uses it once "
        "HELPDESK_RANKER names the version."
    )

    def add_arguments(self, parser):
        # --version names the ranker here: it replaces Django's --version.
        parser.conflict_handler = parser._optionals.conflict_handler = "resolve"
        parser.add_argument("--bootstrap", type=Path, help="labelled questions to add")
        parser.add_argument(
            "--corpus-external-ids",
            action="store_true",
            help="the bootstrap file names articles by external id (import_articles), "
            "not by primary key",
        )
        parser.add_argument(
            "--version", dest="ranker_version", help="name of the new version (default: the time)"
        )
        parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
        parser.add_argument("--category", help="search only this category (slug) and below")
        parser.add_argument(
            "--l2", type=float, default=1e-3, help="pull towards the fusion (larger: closer)"
        )

    def handle(self, *args, bootstrap=None, corpus_external_ids=False, **options):
        folds, l2, version = options["folds"], options["l2"], options["ranker_version"]
        if folds < 2:
            raise CommandError("--folds needs 2 or more.")
        if version and (Path(settings.HELPDESK_RANKER_DIR) / version).exists():
            raise CommandError(f"Ranker {version!r} already exists: choose another --version.")
        examples = training_example_pairs()
        extra = []
        if bootstrap:
            extra = to_questions(read_questions(bootstrap), by_external_id=corpus_external_ids)
        questions = examples + extra
        if not questions:
            raise CommandError(
                "Nothing to train on: no approved training example cites an article, and no "
                "--bootstrap file was given."
            )
        quiet = options["verbosity"] == 0
        collected = ranking.collect(
            questions,
            scope=scope_for(options["category"]),
            provider=get_provider(),
            progress=lambda items: tqdm(items, desc="searching", unit="q", disable=quiet),
        )
        samples = collected.fusion
        try:
            weights = ranking.train(samples, l2=l2, depth=RERANK_DEPTH)
            trained = ranking.Ranker("new", weights)
            in_sample = [
                ranking.first_relevant(
                    trained.rerank(s.candidates[:RERANK_DEPTH]) + s.candidates[RERANK_DEPTH:],
                    s.relevant,
                )
                for s in samples
            ]
            cross = ranking.cross_validate(
                samples,
                folds=folds,
                depth=RERANK_DEPTH,
                fit=lambda part: ranking.Ranker("cv", ranking.train(part, l2=l2)),
            )
            figures = {
                "fusion": ranking.figures(
                    [ranking.first_relevant(s.candidates, s.relevant) for s in samples]
                ),
                "ranker_in_sample": ranking.figures(in_sample),
                f"ranker_cv_{folds}_fold_article_disjoint": ranking.figures(cross),
            }
            folder = ranking.store(
                weights=weights,
                version=version,
                counts={
                    "training_examples": len(examples),
                    "bootstrap_questions": len(extra),
                    "bootstrap_file": bootstrap.name if bootstrap else None,
                    "articles": len({s.group for s in samples}),
                    "l2": l2,
                },
                figures_by_method=figures,
            )
        except ranking.RankerError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"{len(examples)} training examples, {len(extra)} bootstrap questions "
            f"({len(samples)} in all)"
        )
        for name, row in figures.items():
            self.stdout.write(
                f"  {name:<40} R@1 {row['recall_at_1']:.4f}  R@5 {row['recall_at_5']:.4f}  "
                f"MRR {row['mrr']:.4f}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Saved {folder}. Use it with HELPDESK_RANKER={folder.name} "
                "(compare first: manage.py evaluate_search FILE --ranker "
                f"{folder.name})."
            )
        )
