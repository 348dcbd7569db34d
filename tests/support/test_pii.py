"""The PII detector on a labelled set of our own: precision and recall per kind, each
kind's positives, and look-alikes that must stay."""

from collections import Counter

import pytest

from support import pii
from tests.support.pii_cases import CASES, NAMES


def score():
    tp, fp, fn = Counter(), Counter(), Counter()
    for text, expected in CASES:
        left = list(expected)
        for finding in pii.detect(text, names=NAMES):
            key = (finding.kind, finding.text)
            if key in left:
                tp[finding.kind] += 1
                left.remove(key)
            else:
                fp[finding.kind] += 1
        for kind, _ in left:
            fn[kind] += 1
    table = {}
    for kind in pii.KINDS:
        found, wanted = tp[kind] + fp[kind], tp[kind] + fn[kind]
        table[kind] = (
            tp[kind] / found if found else 1.0,
            tp[kind] / wanted if wanted else 1.0,
            wanted,
        )
    return table, tp, fp, fn


def test_precision_and_recall_per_kind_on_the_labelled_set(capsys):
    table, tp, fp, fn = score()
    with capsys.disabled():
        print("\nPII detector on tests/support/pii_cases.py")
        for kind, (precision, recall, support) in table.items():
            print(
                f"  {kind:16} precision {precision:.2f}  recall {recall:.2f}  ({support} labelled)"
            )
    for kind, (precision, recall, support) in table.items():
        assert support >= 2, f"{kind} needs labelled examples"
        assert recall >= 0.9, f"{kind} recall {recall:.2f}"
        assert precision >= 0.85, f"{kind} precision {precision:.2f}"
    micro_p = sum(tp.values()) / (sum(tp.values()) + sum(fp.values()))
    micro_r = sum(tp.values()) / (sum(tp.values()) + sum(fn.values()))
    assert micro_p >= 0.97 and micro_r >= 0.97


@pytest.mark.parametrize(
    "text",
    [
        "Order #100234 shipped on 2026-11-02 for $1,249.00.",
        "Your ticket HD-20261122-0042 was updated.",
        "Invoice 4111111111111112 is wrong",
        "Order number 1234567812345678 has not arrived",
        "Product code DE12 3456 7890 1234 5678 90 in the catalogue",
        "We run version 4.2.1 and build 10.4.22.1.3",
        "Request id 3f2b9c1e-8d4a-4b6f-9e2d-7c1a5b3e9f00 failed",
        "SKU 4006381333931 is out of stock",
    ],
)
def test_look_alikes_are_left_alone(text):
    assert pii.anonymize(text) == (text, [])


def test_anonymize_replaces_with_typed_placeholders_and_lists_the_kinds():
    text = (
        "Casey here: casey@acme.example, +44 20 7946 0958, card 4111 1111 1111 1111, "
        "IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, from 203.0.113.42, "
        "742 Evergreen Terrace, key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z, "
        "hook https://admin:s3cr3t@hooks.acme.example/x"
    )
    anonymized, kinds = pii.anonymize(text, names=["Casey"])
    assert anonymized == (
        "[NAME] here: [EMAIL], [PHONE], card [CARD], IBAN [IBAN], SSN [NATIONAL_ID], from [IP], "
        "[ADDRESS], key [SECRET], hook [URL_CREDENTIALS]"
    )
    assert kinds == sorted(pii.KINDS)
    assert pii.kinds_in(anonymized, names=["Casey"]) == []
