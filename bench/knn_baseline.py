"""Plain k-nearest-neighbour baselines over the same MiniLM embeddings, to compare the
agent's triage (``evaluate_agent --examples``) with: leave-one-out vote of the k nearest
labelled questions for ``ticket_type`` and ``needs_human``.

    DEBUG=true LOG_LEVEL=WARNING .venv/bin/python bench/knn_baseline.py \\
        ../shared/data/triage_banking77_dev.jsonl [--k 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from integrations.embeddings import get_provider

    with open(args.file, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    vectors = np.asarray(
        get_provider().embed_documents([r["text"] for r in rows]), dtype=np.float32
    )
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)  # leave one out
    neighbours = np.argsort(-sims, axis=1)[:, : args.k]
    type_hits = tp = predicted = actual = 0
    for i, row in enumerate(rows):
        near = [rows[j] for j in neighbours[i]]
        type_hits += (
            Counter(n["ticket_type"] for n in near).most_common(1)[0][0] == (row["ticket_type"])
        )
        human = Counter(bool(n["needs_human"]) for n in near).most_common(1)[0][0]
        tp += human and row["needs_human"]
        predicted += human
        actual += bool(row["needs_human"])
    print(
        json.dumps(
            {
                "file": os.path.basename(args.file),
                "n": len(rows),
                "k": args.k,
                "ticket_type_accuracy": round(type_hits / len(rows), 4),
                "needs_human_precision": round(tp / predicted, 4) if predicted else None,
                "needs_human_recall": round(tp / actual, 4) if actual else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
