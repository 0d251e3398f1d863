"""Model cards: Markdown checked for size and rendered once, when it is written.

A card arrives three ways (a README.md upload, the create/edit forms, a Hub API commit);
each goes through `card_check`, and the adapter stores `card_render`'s HTML beside the
Markdown, so showing a page never parses Markdown. markdown-it-py runs in time linear in
the text (a card of 16,000 `[` costs well under a second, once); nh3 then keeps only
harmless tags and attributes, so a card can never run code.
"""

import nh3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from markdown_it import MarkdownIt

# CommonMark with GitHub's tables and strikethrough; raw HTML is parsed (cards use it) and
# then sanitised by nh3.
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def card_check(text: str, *, name: str = "The model card") -> None:
    """Refuse a card over LORAHUB_MAX_CARD_BYTES (UTF-8) or holding NUL characters."""
    limit = settings.LORAHUB_MAX_CARD_BYTES
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ValidationError(
            f"{name} is {filesizeformat(size)}; at most {filesizeformat(limit)} is accepted.",
            code="card_too_large",
        )
    if "\x00" in text:
        raise ValidationError(f"{name} contains a NUL character.", code="card_malformed")


def card_render(text: str) -> str:
    """Sanitised HTML of a Markdown card (empty for an empty card)."""
    if not text.strip():
        return ""
    return nh3.clean(_MARKDOWN.render(text))
