"""Score the AI agent on labelled questions, without writing tickets."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.records import read_records
from integrations.embeddings import get_provider as get_embeddings
from integrations.llm import LLMError, cost_usd
from integrations.llm import get_provider as get_llm
from knowledge.models import Article, Category
from knowledge.search import Scope, category_subtree_ids
from support.ai import planner
from support.ai.triage import ExampleIndex

KEYS = [
    "n",
    "mode",
    "ticket_type_accuracy",
    "ticket_type_macro_f1",
    # Who needs a person, against the needs_human labels: the learned judgement (the
    # neighbours' vote), the always-escalate policy apart, and their union (what the
    # agent hands to people because of the request itself).
    "needs_person_precision",
    "needs_person_recall",
    "policy_fired_share",
    "policy_precision",
    "policy_recall",
    "escalation_precision",
    "escalation_recall",
    "recall_at_1",
    "recall_at_5",
    "recall_at_10",
    "mrr",
    # On questions with relevant articles: the share the agent resolved, and the share of
    # those resolutions that cite a relevant article. With --unanswerable every resolution
    # is wrong: resolution_coverage is then the share resolved without the answer.
    "resolution_coverage",
    "resolution_precision",
    "auto_resolved_share",
    "mean_cost_usd",
    "latency_p50_ms",
    "latency_p95_ms",
]


def read_rows(path: Path) -> list[dict]:
    rows = read_records(path)
    out = []
    for number, row in enumerate(rows, start=1):
        text = (row.get("text") or row.get("query") or "").strip()
        if not text:
            raise CommandError(f"{path}: row {number} has no text (or query).")
        relevant = row.get("relevant_article_ids")
        if isinstance(relevant, str):
            relevant = [x for x in relevant.replace(";", ",").split(",") if x.strip()]
        needs_human = row.get("needs_human")
        if isinstance(needs_human, str):
            needs_human = needs_human.strip().lower() in {"1", "true", "yes"}
        out.append(
            {
                "id": str(row.get("id") or row.get("query_id") or f"row-{number}"),
                "text": text,
                "ticket_type": row.get("ticket_type") or None,
                "needs_human": needs_human,
                "relevant": [str(x).strip() for x in relevant] if relevant else None,
            }
        )
    return out


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def precision(pairs: list[tuple[bool, bool]]) -> float | None:
    """Of the (gold, predicted) pairs predicted true, the share that are; 0.0 when none is
    predicted, None without pairs."""
    if not pairs:
        return None
    predicted = [gold for gold, pred in pairs if pred]
    return round(sum(predicted) / len(predicted), 4) if predicted else 0.0


def recall(pairs: list[tuple[bool, bool]]) -> float | None:
    """Of the (gold, predicted) pairs that are true, the share predicted; 0.0 when none is
    true, None without pairs."""
    if not pairs:
        return None
    actual = [pred for gold, pred in pairs if gold]
    return round(sum(actual) / len(actual), 4) if actual else 0.0


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    labels = sorted({gold for gold, _ in pairs})
    scores = []
    for label in labels:
        tp = sum(1 for g, p in pairs if g == label and p == label)
        fp = sum(1 for g, p in pairs if g != label and p == label)
        fn = sum(1 for g, p in pairs if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


class Command(BaseCommand):
    help = (
        "Run triage, retrieval and routing on labelled questions (JSONL or CSV: text or "
        "query; optional ticket_type, needs_human, relevant_article_ids matched against "
        "imported articles' external ids) and print accuracy, macro-F1, escalation "
        "precision/recall of needs-a-person (the learned judgement of the labelled "
        "neighbours, the always-escalate policy apart, and their union; escalations because "
        "the help center has no answer are not counted there), recall@k, MRR, resolution "
        "coverage and precision (a relevant article cited), auto-resolved share, cost and "
        "latency. --unanswerable removes each question's relevant articles from its search "
        "and reports the share still resolved. Writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--provider", choices=["local", "anthropic", "openai"])
        parser.add_argument(
            "--examples",
            type=Path,
            help="labelled examples to learn from (same format); a question "
            "is never its own example",
        )
        parser.add_argument("--category", help="search only this category (slug) and below")
        parser.add_argument("--limit", type=int, help="only the first N questions")
        parser.add_argument(
            "--unanswerable",
            action="store_true",
            help="leave each question's relevant articles out of its search: what is still "
            "resolved is resolved wrongly",
        )
        parser.add_argument("--json", action="store_true", help="end with one JSON line")

    def handle(
        self,
        *args,
        file: Path,
        provider=None,
        examples=None,
        category=None,
        limit=None,
        json: bool = False,
        unanswerable: bool = False,
        **options,
    ):
        rows = read_rows(file)[:limit] if limit else read_rows(file)
        try:
            llm = get_llm(provider)
        except LLMError as error:
            raise CommandError(str(error)) from error
        embeddings = get_embeddings()
        quiet = options["verbosity"] == 0
        if examples:
            example_rows = read_rows(examples)
            if not quiet:
                self.stderr.write(f"embedding {len(example_rows)} examples…")
            index = ExampleIndex.build(example_rows, embeddings)
        else:
            index = planner.production_examples()
        scope = Scope(include_beta=True)
        if category:
            root = Category.objects.filter(slug=category).first()
            if root is None:
                raise CommandError(f"No category {category!r}.")
            scope = Scope(include_beta=True, category_ids=tuple(category_subtree_ids(root)))
        external = dict(Article.objects.exclude(external_id=None).values_list("pk", "external_id"))
        by_external: dict[str, list[int]] = {}
        for pk, external_id in external.items():
            by_external.setdefault(external_id, []).append(pk)
        if unanswerable and not any(row["relevant"] for row in rows):
            raise CommandError("--unanswerable needs questions with relevant_article_ids.")

        type_pairs, escalations, ranks, latencies = [], [], [], []
        resolved, costs, answers = 0, [], []
        for row in tqdm(rows, desc=f"evaluating ({llm.name})", unit="q", disable=quiet):
            started = time.perf_counter()
            question_scope = scope
            if unanswerable and row["relevant"]:
                gold = tuple(pk for r in row["relevant"] for pk in by_external.get(r, ()))
                question_scope = dataclasses.replace(scope, exclude_article_ids=gold)
            result = planner.plan(
                question=row["text"],
                provider=llm,
                scope=question_scope,
                examples=index,
                exclude_example_id=row["id"],
                embed_provider=embeddings,
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if result.completion is not None:
                c = result.completion
                costs.append(cost_usd(c.model, c.input_tokens, c.output_tokens))
            if row["ticket_type"]:
                type_pairs.append((row["ticket_type"], result.triage.ticket_type))
            if row["needs_human"] is not None:
                escalations.append(
                    (
                        bool(row["needs_human"]),
                        result.triage.needs_human,
                        bool(result.triage.policy),
                    )
                )
            if row["relevant"] is not None:
                relevant = set(row["relevant"])
                ids = [external.get(r.article.pk) for r in result.results]
                if not unanswerable:
                    ranks.append(next((i for i, x in enumerate(ids) if x in relevant), None))
                cited = {external.get(pk) for pk in result.cited}
                answers.append((result.decision == planner.RESOLVE, bool(cited & relevant)))
            resolved += result.decision == planner.RESOLVE

        figures = self._figures(
            len(rows), type_pairs, escalations, ranks, latencies, resolved, costs, answers
        )
        figures["mode"] = "unanswerable" if unanswerable else "answerable"
        self._print(figures, file, llm, type_pairs)
        if json:
            self.stdout.write(__import__("json").dumps(figures))

    def _figures(
        self, n, type_pairs, escalations, ranks, latencies, resolved, costs, answers
    ) -> dict:
        def share(k):
            return sum(1 for r in ranks if r is not None and r < k) / len(ranks)

        learned = [(gold, by_vote) for gold, by_vote, _ in escalations]
        policy = [(gold, by_policy) for gold, _, by_policy in escalations]
        union = [(gold, by_vote or by_policy) for gold, by_vote, by_policy in escalations]
        resolutions = [right for done, right in answers if done]
        return {
            "n": n,
            "ticket_type_accuracy": (
                round(sum(g == p for g, p in type_pairs) / len(type_pairs), 4)
                if type_pairs
                else None
            ),
            "ticket_type_macro_f1": round(macro_f1(type_pairs), 4) if type_pairs else None,
            "needs_person_precision": precision(learned),
            "needs_person_recall": recall(learned),
            "policy_fired_share": (
                round(sum(p for _, p in policy) / len(policy), 4) if policy else None
            ),
            "policy_precision": precision(policy),
            "policy_recall": recall(policy),
            "escalation_precision": precision(union),
            "escalation_recall": recall(union),
            "recall_at_1": round(share(1), 4) if ranks else None,
            "recall_at_5": round(share(5), 4) if ranks else None,
            "recall_at_10": round(share(10), 4) if ranks else None,
            "mrr": (
                round(sum(1 / (r + 1) for r in ranks if r is not None) / len(ranks), 4)
                if ranks
                else None
            ),
            "resolution_coverage": (round(len(resolutions) / len(answers), 4) if answers else None),
            "resolution_precision": (
                round(sum(resolutions) / len(resolutions), 4) if resolutions else None
            ),
            "auto_resolved_share": round(resolved / n, 4) if n else None,
            "mean_cost_usd": (float(sum(costs, Decimal(0)) / len(costs)) if costs else None),
            "latency_p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
            "latency_p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
        }

    def _print(self, figures, file, llm, type_pairs):
        self.stdout.write(
            f"{file.name}: {figures['n']} questions, provider {llm.name} ({llm.model})"
        )
        for key in KEYS[1:]:
            value = figures[key]
            self.stdout.write(f"  {key:<22} {'—' if value is None else value}")
        if type_pairs:
            confusion = Counter((g, p) for g, p in type_pairs if g != p).most_common(3)
            if confusion:
                self.stdout.write(
                    "  most confused (gold → predicted): "
                    + ", ".join(f"{g}→{p} ×{n}" for (g, p), n in confusion)
                )
