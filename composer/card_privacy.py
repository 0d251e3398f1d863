"""A published card names its parents; a parent that went private since must not be named
to anyone but its owner. The stored card is left as written (its owner may make the parent
public again): the names are taken out when the card is shown."""

import re

from composer.models import Lineage

HIDDEN = "a private adapter"
# Shorter bare names would hide ordinary words of the card.
MIN_BARE_NAME = 3


def hidden_parents(adapter, user) -> list:
    """The private parent adapters of `adapter`'s versions that `user` does not own."""
    links = (
        Lineage.objects.filter(child__adapter=adapter, parent__adapter__private=True)
        .exclude(parent__adapter__owner_id=user.pk)
        .select_related("parent__adapter__owner")
    )
    return list({link.parent.adapter.pk: link.parent.adapter for link in links}.values())


def _alternation(texts) -> str:
    # Longest first, so that "bob/t5-a" goes before "t5-a".
    return "|".join(re.escape(t) for t in sorted(set(texts), key=len, reverse=True))


def card_html_for(adapter, user) -> str:
    """`adapter`'s rendered card as `user` may read it: links to and names of hidden
    parents replaced, in one pass each whatever the number of parents."""
    html = adapter.description_html
    parents = hidden_parents(adapter, user)
    if not parents or not html:
        return html
    paths = _alternation(p.get_absolute_url().rstrip("/") for p in parents)
    links = re.compile(rf'<a\s[^>]*href="(?:{paths})(?:/[^"]*)?"[^>]*>.*?</a>', re.DOTALL)
    html = links.sub(f"<em>{HIDDEN}</em>", html)
    names = [p.full_name for p in parents]
    names += [p.name for p in parents if len(p.name) >= MIN_BARE_NAME]
    words = re.compile(rf"(?<![\w/.-])(?:{_alternation(names)})(?![\w-])")
    return words.sub(HIDDEN, html)
