"""`GET /api/models`: search, author, tag filters, sort and cursor pages."""

from dataclasses import dataclass, field

from django.db.models import Q

from hub.models import Adapter
from hub.selectors import LIST_DEFERRED, adapters_visible
from hub.services.search import adapters_matching

from .payloads import model_document
from .repos import Repo

MAX_PAGE = 1000
# `full=1` items carry their files: fewer per page. A list never carries configs (up to
# 1 MiB each; model_info has them).
MAX_FULL_PAGE = 100
# Deeper than this, a cursor is refused (an offset costs the database its whole length).
MAX_OFFSET = 1_000_000


class ListError(ValueError):
    """A listing parameter out of range; the message says which."""


SORTS = {
    "downloads": ("-downloads", "-id"),
    "likes": ("-downloads", "-id"),  # no likes in the catalog: most used first
    "trendingScore": ("-downloads", "-id"),
    "lastModified": ("-updated", "-id"),
    "createdAt": ("-created", "-id"),
    "id": ("owner__username", "name"),
}


@dataclass
class ListQuery:
    search: str = ""
    author: str = ""
    filters: list[str] = field(default_factory=list)
    sort: str = ""
    ascending: bool = False
    page_size: int = MAX_PAGE
    offset: int = 0
    card: bool = False
    full: bool = False

    @classmethod
    def from_params(cls, params) -> "ListQuery":
        def flag(name: str) -> bool:
            return params.get(name, "").lower() in {"1", "true"}

        def number(name: str, default: int) -> int:
            try:
                return max(0, int(params.get(name, default)))
            except ValueError:
                return default

        offset = number("cursor", 0)
        if offset > MAX_OFFSET:
            raise ListError(f"cursor must be at most {MAX_OFFSET:,}: narrow the search instead")
        full = flag("full")
        largest = MAX_FULL_PAGE if full else MAX_PAGE
        return cls(
            search=params.get("search", "").strip(),
            author=params.get("author", "").strip(),
            filters=[f for f in params.getlist("filter") if f],
            sort=params.get("sort") if params.get("sort") in SORTS else "",
            ascending=params.get("direction") == "1",
            page_size=min(number("limit", largest), largest) or largest,
            offset=offset,
            card=flag("cardData") or full,
            full=full,
        )


def tag_filter(value: str) -> Q:
    lowered = value.lower()
    if lowered in {"peft", "safetensors"}:
        return Q()
    if lowered.startswith("base_model:"):
        return Q(base_model__identifier=value.split(":")[-1])
    if lowered.startswith("license:"):
        return Q(license__iexact=value.partition(":")[2])
    if lowered in {"lora", "adalora", "loha", "lokr"}:
        return Q(current_version__peft_type__iexact=value)
    # A subquery, not a join: a join on tags would repeat adapters matched by task.
    tagged = Adapter.tags.through.objects.filter(tag__name=value).values("adapter_id")
    return Q(pk__in=tagged) | Q(task=value)


def list_models(query: ListQuery, user) -> tuple[list[dict], bool]:
    """One page of visible adapters as list items, and whether another page follows."""
    adapters = adapters_visible(user)
    if query.author:
        adapters = adapters.filter(owner__username=query.author)
    for value in query.filters:
        adapters = adapters.filter(tag_filter(value))
    # Like the Hub, `search` selects and `sort` (default: downloads) orders; the catalog's
    # search does the selecting. Ordering on an indexed column keeps a common word fast.
    adapters, _ = adapters_matching(adapters, query.search)
    order = SORTS[query.sort or "downloads"]
    if query.ascending:
        order = tuple(key[1:] if key.startswith("-") else "-" + key for key in order)
    adapters = adapters.order_by(*order)
    # A listing never shows the card or the search columns (large on a big catalog).
    adapters = adapters.prefetch_related("tags").defer(*LIST_DEFERRED)
    if query.full:
        adapters = adapters.prefetch_related("current_version__files__blob")
    page = list(adapters[query.offset : query.offset + query.page_size + 1])
    has_more = len(page) > query.page_size
    documents = []
    for adapter in page[: query.page_size]:
        repo = Repo(adapter.owner.get_username(), adapter.name, adapter.private, adapter=adapter)
        version = adapter.current_version
        files = list(version.files.all()) if query.full else None
        documents.append(
            model_document(
                repo,
                version,
                files=files,
                with_card=query.card,
                with_config=False,
                tag_names=[tag.name for tag in adapter.tags.all()],
                viewer=user,
            )
        )
    return documents, has_more
