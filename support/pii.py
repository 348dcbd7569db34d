"""Personal data in free text: find it, and replace it with typed placeholders.

Kinds and how each is found (checked, not just pattern-matched, where a check exists):

=====================  =================================================================
``EMAIL``              addresses (``local@domain.tld``)
``PHONE``              Google's libphonenumber (``phonenumbers``): international numbers
                       in any format, national ones of ``HELPDESK_PII_PHONE_REGIONS``;
                       only numbers valid for their region
``CARD``               13–19 digits (spaces/dashes allowed) with a card-network prefix
                       and a valid Luhn check digit
``IBAN``               country code + check digits + account, mod-97 checked
                       (``python-stdnum``)
``NATIONAL_ID``        US SSN (``123-45-6789`` shape and ranges), UK National Insurance
                       numbers, and digit runs right after "SSN" / "social security" /
                       "national id" / "passport"
``IP``                 IPv4 and IPv6 addresses (parsed by ``ipaddress``; not dotted
                       numbers right after "version", "release", "upgrade" …)
``ADDRESS``            street addresses: number + street name + street type, or
                       European "Name-straße 12" / "12 rue …" forms, with unit suffixes
``SECRET``             API keys and tokens of known shapes (OpenAI/Anthropic ``sk-``,
                       Stripe, GitHub, Slack, AWS, Google, JWTs, ``Bearer …``) and values
                       after "password=", "api_key:", "token=" …
``URL_CREDENTIALS``    URLs with a user and password (``https://user:pass@host``)
``NAME``               names of people known from the ticket (requester, agents)
=====================  =================================================================

Look-alikes that stay: order/invoice numbers (no Luhn + network prefix, no valid phone),
ticket references, dates, amounts, version numbers, UUIDs, tracking numbers.
Where two findings overlap, the more specific kind wins (the order of ``KINDS``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from stdnum import iban as stdnum_iban
from stdnum import luhn

KINDS = (
    "URL_CREDENTIALS",
    "SECRET",
    "EMAIL",
    "IBAN",
    "CARD",
    "NATIONAL_ID",
    "IP",
    "PHONE",
    "ADDRESS",
    "NAME",
)
_PRIORITY = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str

    @property
    def placeholder(self) -> str:
        return f"[{self.kind}]"


# ---- patterns ------------------------------------------------------------------------------

_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@[^\s<>\"']+", re.I)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_SECRET_TOKENS = re.compile(
    r"""
    \b(?:
        sk-(?:ant-|proj-|live-)?[A-Za-z0-9_-]{20,}          # OpenAI / Anthropic
      | (?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}          # Stripe
      | gh[pousr]_[A-Za-z0-9]{30,} | github_pat_[A-Za-z0-9_]{40,}
      | xox[abprs]-[A-Za-z0-9-]{10,}                        # Slack
      | (?:AKIA|ASIA)[0-9A-Z]{16}                           # AWS access key id
      | AIza[0-9A-Za-z_-]{35}                               # Google API key
      | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}  # JWT
    )
    """,
    re.X,
)
_BEARER = re.compile(r"\b(?:Bearer|Token)\s+([A-Za-z0-9._~+/=-]{16,})")
_SECRET_ASSIGNMENT = re.compile(
    r"\b(?:api[_ -]?key|api[_ -]?token|access[_ -]?token|auth[_ -]?token|secret(?:[_ -]?key)?"
    r"|client[_ -]?secret|password|passwd|pwd)\b[\"']?\s*(?:[:=]|\bis\b)\s*[\"']?([^\s\"',;]{6,})",
    re.I,
)
_CARD_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9])|35)")
_IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", re.I)
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_NINO = re.compile(
    r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
_ID_AFTER_LABEL = re.compile(
    r"\b(?:SSN|social security(?: number| no\.?)?|national (?:id|insurance)(?: number| no\.?)?"
    r"|passport(?: number| no\.?)?|tax id|TIN)(?![A-Za-z])"
    r"\s*(?:is|:|#)?\s*([A-Z]{0,2}\d[\d -]{5,14}\d)",
    re.I,
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_STREET_TYPES = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    r"|Terrace|Square|Sq|Parkway|Pkwy|Highway|Hwy|Close|Crescent|Gardens"
)
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][A-Za-z'.-]*\s+){{1,4}}(?:{_STREET_TYPES})\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|#)\.?\s*[\w-]+)?"
    r"|\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|weg|gasse|platz|allee|gracht|laan|straat|vej)"
    r"\s+\d{1,4}[a-z]?\b"
    r"|\b\d{1,4},?\s+(?:rue|avenue|boulevard|place|chemin|via|calle|carrer)\s+"
    r"(?:(?:de|du|des|la|le|del|di)\s+)*[A-ZÀ-Ý][\w'À-ÿ-]+(?:\s+[A-ZÀ-Ý][\w'À-ÿ-]+){0,3}",
)


# ---- detectors -----------------------------------------------------------------------------


def _regex(kind: str, pattern: re.Pattern, text: str, group: int = 0) -> Iterable[Finding]:
    for match in pattern.finditer(text):
        yield Finding(kind, match.start(group), match.end(group), match.group(group))


def _cards(text: str) -> Iterable[Finding]:
    for match in _CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn.is_valid(digits):
            yield Finding("CARD", match.start(), match.end(), match.group())


def _ibans(text: str) -> Iterable[Finding]:
    for match in _IBAN_CANDIDATE.finditer(text):
        candidate = match.group()
        # The pattern may run on into the next word ("… 0130 00 please"): try the longest
        # prefix ending at a group boundary that passes the mod-97 check.
        ends = [m.start() for m in re.finditer(r" ", candidate)] + [len(candidate)]
        for end in sorted(ends, reverse=True):
            if end >= 15 and stdnum_iban.is_valid(candidate[:end].upper()):
                yield Finding("IBAN", match.start(), match.start() + end, candidate[:end])
                break


_VERSION_CONTEXT = re.compile(
    r"\b(?:v|ver|version|versions|release|build|upgraded?|upgrading)\b", re.I
)


def _ips(text: str) -> Iterable[Finding]:
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            try:
                ipaddress.ip_address(match.group())
            except ValueError:
                continue
            if pattern is _IPV4 and _VERSION_CONTEXT.search(
                text[max(0, match.start() - 30) : match.start()]
            ):
                continue  # "upgrade from 1.0.0.1": a version number, not an address
            yield Finding("IP", match.start(), match.end(), match.group())


def _phones(text: str) -> Iterable[Finding]:
    for region in settings.HELPDESK_PII_PHONE_REGIONS:
        matcher = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        )
        for match in matcher:
            yield Finding("PHONE", match.start, match.end, match.raw_string)


def _names(text: str, names: Iterable[str]) -> Iterable[Finding]:
    words = sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len, reverse=True)
    if not words:
        return
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.I)
    yield from _regex("NAME", pattern, text)


def detect(text: str, *, names: Iterable[str] = ()) -> list[Finding]:
    """Every piece of personal data found in ``text``, left to right, without overlaps."""
    if not text:
        return []
    found: list[Finding] = [
        *_regex("URL_CREDENTIALS", _URL_CREDENTIALS, text),
        *_regex("SECRET", _SECRET_TOKENS, text),
        *_regex("SECRET", _BEARER, text, group=1),
        *_regex("SECRET", _SECRET_ASSIGNMENT, text, group=1),
        *_regex("EMAIL", _EMAIL, text),
        *_ibans(text),
        *_cards(text),
        *_regex("NATIONAL_ID", _SSN, text),
        *_regex("NATIONAL_ID", _NINO, text),
        *_regex("NATIONAL_ID", _ID_AFTER_LABEL, text, group=1),
        *_ips(text),
        *_phones(text),
        *_regex("ADDRESS", _ADDRESS, text),
        *_names(text, names),
    ]
    found.sort(key=lambda f: (_PRIORITY[f.kind], f.start, -(f.end - f.start)))
    kept: list[Finding] = []
    for finding in found:
        if all(finding.end <= k.start or finding.start >= k.end for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


def anonymize(text: str, *, names: Iterable[str] = ()) -> tuple[str, list[str]]:
    """``text`` with each finding replaced by its placeholder (``[EMAIL]``, ``[CARD]``, …),
    and the sorted kinds that were found."""
    findings = detect(text, names=names)
    out, last = [], 0
    for finding in findings:
        out.append(text[last : finding.start])
        out.append(finding.placeholder)
        last = finding.end
    out.append(text[last:])
    return "".join(out), sorted({f.kind for f in findings})


def kinds_in(text: str, *, names: Iterable[str] = ()) -> list[str]:
    """The kinds of personal data still present (for a reviewer's edited text)."""
    return sorted({f.kind for f in detect(text, names=names)})
