"""`{% lineage version %}`: where a catalog version came from and what was made from it;
`{% card adapter %}`: its model card, without the names of parents gone private.

A screened composition records every candidate it screened as a parent, most of them at
weight 0, and a popular adapter may be the parent of many published ones: the page lists
the parents that carry weight and counts the others, and lists at most `SHOWN` children
(those the viewer may see), so that its size and its queries stay bounded.
"""

from django import template
from django.db.models import Q
from django.utils.safestring import mark_safe

from composer.card_privacy import card_html_for

register = template.Library()

SHOWN = 50


@register.inclusion_tag("composer/_lineage.html", takes_context=True)
def lineage(context, version) -> dict:
    request = context["request"]
    links = version.lineage_parents.select_related("parent__adapter__owner", "job")
    carried = links.exclude(weight=0)
    children = (
        version.lineage_children.exclude(weight=0)
        .filter(Q(child__adapter__private=False) | Q(child__adapter__owner=request.user.pk))
        .select_related("child__adapter__owner")
    )
    parents, shown_children = list(carried[: SHOWN + 1]), list(children[: SHOWN + 1])
    return {
        "request": request,
        "made_by": links.first(),
        "parents": parents[:SHOWN],
        "parents_more": carried.count() - SHOWN if len(parents) > SHOWN else 0,
        "unweighted": links.filter(weight=0).count(),
        "children": shown_children[:SHOWN],
        "children_more": children.count() - SHOWN if len(shown_children) > SHOWN else 0,
    }


@register.simple_tag(takes_context=True)
def card(context, adapter) -> str:
    # description_html is the sanitised render of the card (hub.services.cards).
    return mark_safe(card_html_for(adapter, context["request"].user))  # noqa: S308
