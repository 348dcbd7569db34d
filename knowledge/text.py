"""Article text: Markdown to sanitized HTML, and chunking for embeddings."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import markdown as markdown_lib
import nh3
from django.conf import settings

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"align"},
    "td": {"align"},
    "h2": {"id"},
    "h3": {"id"},
    "code": {"class"},
}


def render_markdown(body: str) -> str:
    """Markdown to HTML that cannot run script (no tags, attributes or URL schemes beyond
    the allow-lists; links get rel="noopener noreferrer") and loads nothing from another
    site: an image from elsewhere becomes a link to it (:func:`external_images_to_links`)."""
    html = markdown_lib.markdown(
        body or "", extensions=["extra", "sane_lists", "toc"], output_format="html"
    )
    return external_images_to_links(
        nh3.clean(
            html,
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer",
        )
    )


_IMG = re.compile(r"<img\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r'([a-zA-Z-]+)="([^"]*)"')


def is_own_url(url: str) -> bool:
    """A URL on our own site: relative (``/media/x.png``, ``img/x.png``) or under
    ``SITE_URL``. Protocol-relative (``//host``) and other schemes are not."""
    url = url.strip()
    lowered = url.lower()
    if lowered.startswith(("//", "/\\", "\\")):
        return False
    site = settings.SITE_URL.rstrip("/").lower()
    if site and (lowered == site or lowered.startswith(site + "/")):
        return True
    scheme = re.match(r"^([a-z][a-z0-9+.-]*):", lowered)
    return scheme is None


def external_images_to_links(html: str) -> str:
    """In sanitized HTML (attributes double-quoted and escaped by nh3), replace each image
    whose source is not on our own site with a link to it, so a page never loads a third
    party's image (a tracking pixel) for its readers; our own images stay."""

    def replace(match: re.Match) -> str:
        attributes = dict(_ATTRIBUTE.findall(match.group(1)))
        src = attributes.get("src", "")
        if src and is_own_url(src):
            return match.group(0)
        if not src:
            return attributes.get("alt", "")
        label = attributes.get("alt") or src
        return f'<a href="{src}" rel="noopener noreferrer nofollow">{label}</a>'

    return _IMG.sub(replace, html)


def content_hash(*, title: str, summary: str, body: str) -> str:
    return hashlib.sha256("\x1f".join([title, summary, body]).encode()).hexdigest()


@dataclass(frozen=True)
class Chunk:
    heading: str
    text: str


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_WORDS_PER_CHUNK = 180  # about 250 tokens of MiniLM's 256-token window


def chunk_article(*, title: str, body: str, summary: str = "") -> list[Chunk]:
    """Split at headings, so each heading stays with its text; long sections split at
    paragraphs. Every chunk starts with the title (and heading) it belongs to."""
    sections: list[tuple[str, list[str]]] = [("", [summary] if summary else [])]
    for line in (body or "").splitlines():
        match = _HEADING.match(line)
        if match:
            sections.append((match.group(2).strip(), []))
        else:
            sections[-1][1].append(line)

    chunks: list[Chunk] = []
    for heading, lines in sections:
        paragraphs = [p.strip() for p in "\n".join(lines).split("\n\n") if p.strip()]
        if not paragraphs:
            continue
        prefix = f"{title} › {heading}" if heading else title
        current: list[str] = []
        for paragraph in paragraphs:
            words = sum(len(p.split()) for p in current) + len(paragraph.split())
            if current and words > _WORDS_PER_CHUNK:
                chunks.append(Chunk(heading, f"{prefix}\n\n" + "\n\n".join(current)))
                current = []
            current.append(paragraph)
        chunks.append(Chunk(heading, f"{prefix}\n\n" + "\n\n".join(current)))
    return chunks or [Chunk("", title)]


def plain_text(markdown_text: str) -> str:
    """Markdown without its markup, for snippets."""
    text = re.sub(r"`{1,3}", "", markdown_text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"^\s*(#{1,6}|[-*+]|\d+\.)\s+", "", text, flags=re.MULTILINE)
    text = re.sub(r"[*_]{1,2}([^*_]+)[*_]{1,2}", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()
