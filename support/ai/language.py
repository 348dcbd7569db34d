"""The language a customer writes in, so the agent answers in it.

Detected offline with ``py3langid`` (the maintained fork of langid.py, already what the
copilot uses to translate) among ``settings.HELPDESK_LANGUAGES``; the first of those is
the help center's own language. Short or ambiguous text ("Export CSV") is taken to be in
the help center's language: another language must reach ``MIN_PROBABILITY`` to be
chosen, so that a stray word never switches the reply's language.

Anthropic and OpenAI are told the language and answer in it; the offline provider, which
cannot translate, answers with the article and says when the article's language differs
(``integrations.llm.local``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import get_language_info

logger = logging.getLogger(__name__)

#: The probability (normalised over HELPDESK_LANGUAGES) another language than the help
#: center's needs in order to be chosen.
MIN_PROBABILITY = 0.9


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1, lower case
    name: str  # in English: what a prompt and a note say

    def as_context(self) -> dict[str, str]:
        return {"customer": self.code, "customer_name": self.name}


def language(code: str) -> Language:
    try:
        name = get_language_info(code)["name"]
    except KeyError:
        name = code
    return Language(code=code, name=name)


@functools.cache
def _identifier(languages: tuple[str, ...]):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


def default() -> Language:
    return language(settings.HELPDESK_LANGUAGES[0])


def detect(text: str) -> Language:
    """The language of ``text`` (the help center's own when it cannot tell)."""
    return _detect(" ".join((text or "").split())[:4000], tuple(settings.HELPDESK_LANGUAGES))


@functools.lru_cache(maxsize=2048)  # the same passages come back question after question
def _detect(text: str, languages: tuple[str, ...]) -> Language:
    fallback = language(languages[0])
    if len(languages) < 2 or not text:
        return fallback
    try:
        code, probability = _identifier(languages).classify(text)
    except Exception:  # a detector failure must not fail an analysis
        logger.warning("language detection failed", exc_info=True)
        return fallback
    if code == fallback.code or probability < MIN_PROBABILITY:
        return fallback
    return language(code)


def warm_up() -> None:
    """Load the model now rather than on the first ticket."""
    detect("warm up")
