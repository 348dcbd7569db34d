"""Markdown to safe HTML, for every app that shows text people wrote (articles, feature
requests, messages)."""

from __future__ import annotations

import re

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
