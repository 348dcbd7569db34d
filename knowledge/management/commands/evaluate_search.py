"""Score search on questions whose answering article is known: dense only, keyword only,
the fusion, and the fusion re-ordered by a learned ranker. Writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.records import read_records
from integrations.embeddings import get_provider
from knowledge import ranking
from knowledge.models import Article, Category
from knowledge.search import RERANK_DEPTH, Scope, category_subtree_ids

METHODS = {
    "dense": "dense only",
    "keyword": "keyword only",
    "fusion": "fusion",
    "ranker": "fusion + ranker {version}",
    "ranker_in_sample": "fusion + ranker trained on this file (in-sample)",
    "ranker_cv": "fusion + ranker, {folds}-fold article-disjoint",
}


def read_questions(path: Path) -> list[dict]:
    """Rows of a .jsonl or .csv file: ``query`` (or ``text``) and the answering
    articles' ids (``relevant_article_ids``, a list or "a,b"; or ``article_id``)."""
    rows = read_records(path)
    out = []
    for number, row in enumerate(rows, start=1):
        text = str(row.get("query") or row.get("text") or "").strip()
        relevant = row.get("relevant_article_ids") or row.get("article_id") or []
        if isinstance(relevant, str):
            relevant = relevant.replace(";", ",").split(",")
        elif not isinstance(relevant, list):
            relevant = [relevant]
        relevant = [str(x).strip() for x in relevant if str(x).strip()]
        if not text or not relevant:
            raise CommandError(f"{path}: row {number} needs a query and its article id(s).")
        out.append({"text": text, "relevant": relevant})
    return out


def to_questions(rows: list[dict], *, by_external_id: bool = True) -> list[ranking.Question]:
    """Rows whose articles exist here (by external id, or by primary key), with those
    articles' primary keys; the others are left out (``CommandError`` if none is left)."""
    if by_external_id:
        known = dict(Article.objects.exclude(external_id=None).values_list("external_id", "pk"))
    else:
        known = {str(pk): pk for pk in Article.objects.values_list("pk", flat=True)}
    questions = []
    for row in rows:
        relevant = frozenset(known[r] for r in row["relevant"] if r in known)
        if relevant:
            questions.append(ranking.Question(row["text"], relevant, group=min(row["relevant"])))
    if not questions:
        how = "external ids (import the corpus with import_articles)" if by_external_id else "ids"
        raise CommandError(f"No question names an article found here by {how}.")
    return questions


def scope_for(category: str | None) -> Scope:
    if not category:
        return Scope(include_beta=True)
    root = Category.objects.filter(slug=category).first()
    if root is None:
        raise CommandError(f"No category {category!r}.")
    return Scope(include_beta=True, category_ids=tuple(category_subtree_ids(root)))


def print_table(stdout, figures: dict, labels: dict) -> None:
    stdout.write(f"  {'method':<52} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6}")
    for key, row in figures.items():
        if row is None:
            continue
        stdout.write(
            f"  {labels[key]:<52} {row['recall_at_1']:>6.4f} {row['recall_at_5']:>6.4f} "
            f"{row['recall_at_10']:>6.4f} {row['mrr']:>6.4f}"
        )


class Command(BaseCommand):
    help = (
        "Score search on labelled questions (JSONL or CSV: query, relevant_article_ids or "
        "article_id, matched against imported articles' external ids): recall@1/5/10 and "
        "MRR for dense only, keyword only, the fusion, and the fusion with a learned ranker "
        "(the one in use, or --ranker). With --folds N, also a ranker trained on this file: "
        "in-sample (optimistic) and by N-fold cross-validation that holds out whole "
        "articles (what to expect on articles it never saw). Writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--ranker",
            help="ranker version to score (default: settings.HELPDESK_RANKER; 'none': skip)",
        )
        parser.add_argument(
            "--folds",
            type=int,
            default=0,
            help="also train rankers on this file: in-sample and N-fold article-disjoint",
        )
        parser.add_argument("--category", help="search only this category (slug) and below")
        parser.add_argument("--limit", type=int, help="only the first N questions")
        parser.add_argument("--json", action="store_true", help="end with one JSON line")

    def handle(self, *args, file: Path, ranker=None, folds=0, category=None, limit=None, **options):
        rows = read_questions(file)
        rows = rows[:limit] if limit else rows
        if folds == 1 or folds < 0:
            raise CommandError("--folds needs 2 or more (0: no training).")
        version = settings.HELPDESK_RANKER if ranker is None else ranker
        version = "" if version == "none" else version
        saved = None
        if version:
            try:
                saved = ranking.load(version)
            except ranking.RankerError as error:
                raise CommandError(str(error)) from error
        scope = scope_for(category)
        questions = to_questions(rows)
        quiet = options["verbosity"] == 0
        collected = ranking.collect(
            questions,
            scope=scope,
            provider=get_provider(),
            progress=lambda items: tqdm(items, desc="searching", unit="q", disable=quiet),
        )

        def places(samples, model=None):
            out = []
            for s in samples:
                ordered = s.candidates
                if model is not None:
                    ordered = model.rerank(ordered[:RERANK_DEPTH]) + ordered[RERANK_DEPTH:]
                out.append(ranking.first_relevant(ordered, s.relevant))
            return out

        figures = {
            "dense": ranking.figures(places(collected.dense)),
            "keyword": ranking.figures(places(collected.keyword)),
            "fusion": ranking.figures(places(collected.fusion)),
            "ranker": ranking.figures(places(collected.fusion, saved)) if saved else None,
            "ranker_in_sample": None,
            "ranker_cv": None,
        }
        if folds:
            try:
                weights = ranking.train(collected.fusion)
                figures["ranker_in_sample"] = ranking.figures(
                    places(collected.fusion, ranking.Ranker("in-sample", weights))
                )
                figures["ranker_cv"] = ranking.figures(
                    ranking.cross_validate(collected.fusion, folds=folds, depth=RERANK_DEPTH)
                )
            except ranking.RankerError as error:
                raise CommandError(str(error)) from error

        articles = Article.objects.filter(status=Article.Status.PUBLISHED).count()
        self.stdout.write(
            f"{file.name}: {len(questions)} questions ({len(rows) - len(questions)} with no "
            f"article here), {articles} published articles"
        )
        labels = {k: v.format(version=version, folds=folds) for k, v in METHODS.items()}
        print_table(self.stdout, figures, labels)
        if options["json"]:
            self.stdout.write(json.dumps({"n": len(questions), **figures}))
