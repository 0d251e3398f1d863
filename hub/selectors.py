"""Reading the catalog as a given user sees it: private adapters exist only for their owner."""

import re

from django.db.models import Q, QuerySet
from django.http import Http404

from .models import Adapter, AdapterVersion

COMMIT_PREFIX = re.compile(r"[0-9a-f]{7,40}")
VERSION_NUMBER = re.compile(r"v(\d{1,9})")
# Columns a list of adapters never shows (large on a big catalog): cards and search columns.
LIST_DEFERRED = (
    "description",
    "description_html",
    "search_text",
    "search_words",
    "search_vector",
    "current_version__config",
)


def adapters_visible(user) -> QuerySet[Adapter]:
    """Adapters `user` may see (public ones, and their own), with a version to show."""
    visible = Q(private=False)
    if user is not None and user.is_authenticated:
        visible |= Q(owner=user)
    return Adapter.objects.filter(visible, current_version__isnull=False).select_related(
        "owner", "base_model", "current_version"
    )


def adapter_ids_hidden(user, ids) -> set[str]:
    """Of the repository ids `ids` (owner/name), those of private adapters `user` may not
    see: a card may name them (a published card names its parents)."""
    pairs = {tuple(i.split("/", 1)) for i in ids if isinstance(i, str) and "/" in i}
    if not pairs:
        return set()
    match = Q()
    for owner, name in pairs:
        match |= Q(owner__username=owner, name=name)
    hidden = Adapter.objects.filter(match, private=True)
    if user is not None and user.is_authenticated:
        hidden = hidden.exclude(owner=user)
    return {f"{owner}/{name}" for owner, name in hidden.values_list("owner__username", "name")}


def adapter_get_visible(user, owner: str, name: str) -> Adapter:
    """The adapter `owner/name`, or 404 if it does not exist or `user` may not see it."""
    adapter = adapters_visible(user).filter(owner__username=owner, name=name).first()
    if adapter is None:
        raise Http404("No such adapter")
    return adapter


def adapter_get_owned(user, owner: str, name: str) -> Adapter:
    """The adapter for its owner to change: 404 if `user` may not see it, so private
    adapters stay secret; the caller answers 403 to others who can see it."""
    adapter = Adapter.objects.filter(owner__username=owner, name=name).first()
    if adapter is None or (adapter.private and adapter.owner_id != getattr(user, "pk", None)):
        raise Http404("No such adapter")
    return adapter


def version_resolve(adapter: Adapter, revision: str) -> AdapterVersion | None:
    """A version by revision: "main" (the current one), a commit id or a prefix of at
    least 7 hex digits, or "v<number>"."""
    versions = adapter.versions.all()
    if revision == "main":
        return adapter.current_version
    if match := VERSION_NUMBER.fullmatch(revision):
        return versions.filter(number=int(match[1])).first()
    if COMMIT_PREFIX.fullmatch(revision):
        found = list(versions.filter(commit__startswith=revision)[:2])
        return found[0] if len(found) == 1 else None
    return None
