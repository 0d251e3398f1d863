"""Browsing the catalog: home, the adapter list with filters and search, pages."""

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from ..choices import LICENSE_LABELS, TASK_LABELS
from ..models import Adapter, BaseModel, Tag
from ..pagination import KeysFirstPaginator
from ..selectors import LIST_DEFERRED, adapter_get_visible, adapters_visible, version_resolve
from ..services.choices_cache import cached_choices
from ..services.search import RANK_POOL, adapters_search

PAGE_SIZE = 20
# Filtered lists and searches count their matches up to here, then show "1,000+"; as many
# as a search ranks, so that a search that ranked only some of its matches reads "1,000+".
COUNT_CAP = RANK_POOL
SORTS = {
    "downloads": ("Most downloaded", ("-downloads", "name")),
    "newest": ("Newest", ("-created", "name")),
    "updated": ("Recently updated", ("-updated", "name")),
    "name": ("Name", ("name", "owner__username")),
}


def home(request):
    visible = adapters_visible(request.user).defer(*LIST_DEFERRED).prefetch_related("tags")
    choices = _filter_choices(request.user)
    return render(
        request,
        "hub/home.html",
        {
            "popular": visible.order_by("-downloads", "name")[:6],
            "recent": visible.order_by("-created", "name")[:6],
            "base_models": choices["base_model_counts"][:8],
            "adapter_count": choices["count"],
            "search_words": [t.name for t in choices["tags"][:3]],
        },
    )


def adapter_list(request):
    """Filters: base, task, license, tag, r; sort; q (full-text search, ranked)."""
    params = request.GET
    # The cards show neither the model card nor the search columns: leave them unread.
    listed = adapters_visible(request.user).defer(*LIST_DEFERRED).prefetch_related("tags")
    adapters = listed
    filters = {
        "base": ("base_model__identifier", params.get("base", "")),
        "task": ("task", params.get("task", "")),
        "license": ("license", params.get("license", "")),
        "tag": ("tags__name", params.get("tag", "")),
        "r": ("current_r", params.get("r", "")),
    }
    for lookup, value in filters.values():
        if value:
            if lookup == "current_r" and not value.isdecimal():
                continue
            if lookup == "tags__name":
                adapters = adapters.filter(_has_tag(value))
                continue
            adapters = adapters.filter(**{lookup: value})
    q = params.get("q", "").strip()
    sort = params.get("sort", "")
    searched, matches = q, None
    if q:
        adapters, searched, matches = adapters_search(adapters, q)
    if sort in SORTS or not q:
        sort = sort if sort in SORTS else "downloads"
        adapters = adapters.order_by(*SORTS[sort][1])
    choices = _filter_choices(request.user)
    paginator = KeysFirstPaginator(adapters, PAGE_SIZE, rows=listed, count_cap=COUNT_CAP)
    if not q and not any(value for _, value in filters.values()):
        paginator.count = choices["count"]  # all visible adapters: counted with the choices
    elif matches is not None:
        paginator.count_known(matches)  # counted by the search itself
    page = paginator.get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    return render(
        request,
        "hub/adapter_list.html",
        {
            "page": page,
            "q": q,
            # Shown as "Showing results for ..." when a typo was respelled.
            "respelled": searched if searched != q else "",
            "sort": sort or "relevance",
            "sorts": [(key, label) for key, (label, _) in SORTS.items()],
            "selected": {key: value for key, (_, value) in filters.items()},
            "query_without_page": query.urlencode(),
            "base_models": choices["base_models"],
            "tasks": choices["tasks"],
            "task_labels": TASK_LABELS,
            "licenses": choices["licenses"],
            "license_labels": LICENSE_LABELS,
            "tags": _popular_tags(choices["tags"], selected=filters["tag"][1]),
            "ranks": choices["ranks"],
        },
    )


def adapter_detail(request, owner, name, revision="main"):
    adapter = adapter_get_visible(request.user, owner, name)
    version = version_resolve(adapter, revision)
    if version is None:
        raise Http404("No such revision")
    return render(
        request,
        "hub/adapter_detail.html",
        {
            "adapter": adapter,
            "version": version,
            "is_current": version.pk == adapter.current_version_id,
            "files": version.files.select_related("blob"),
            "versions": adapter.versions.select_related("created_by"),
            "is_owner": request.user.is_authenticated and request.user.pk == adapter.owner_id,
            "task_label": TASK_LABELS.get(adapter.task, adapter.task),
            "license_label": LICENSE_LABELS.get(adapter.license, adapter.license),
            "hub_endpoint": request.build_absolute_uri("/").rstrip("/"),
        },
    )


def base_model_list(request):
    return render(
        request,
        "hub/base_model_list.html",
        {"base_models": _base_models_with_counts(request.user)},
    )


def base_model_detail(request, identifier):
    base = get_object_or_404(BaseModel, identifier=identifier)
    adapters = adapters_visible(request.user).filter(base_model=base).order_by("-downloads")
    # A base model named only by someone's private adapters is not public knowledge; one
    # registered with its files (base model by id) is.
    if not (base.commit or base.local_path or adapters.exists()):
        raise Http404("no such base model")
    page = Paginator(adapters.prefetch_related("tags"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "hub/base_model_detail.html", {"base": base, "page": page})


def user_detail(request, owner):
    account = get_object_or_404(get_user_model(), username=owner)
    adapters = adapters_visible(request.user).filter(owner=account).order_by("-updated")
    page = Paginator(adapters.prefetch_related("tags"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "hub/user_detail.html", {"account": account, "page": page})


def _has_tag(name: str) -> Exists:
    """Adapters tagged `name`: a semi-join on the through table's (tag, adapter) index,
    merged with the other filters' index in adapter order; a join through the tags would
    also repeat an adapter per matching link."""
    tag = Tag.objects.filter(name=name).values("pk")[:1]
    links = Adapter.tags.through.objects.filter(adapter_id=OuterRef("pk"), tag_id=Subquery(tag))
    return Exists(links)


def _base_models_with_counts(user) -> list[BaseModel]:
    """Base models with adapters `user` can see, each with its `adapter_count`, most used
    first: one GROUP BY over the visible adapters' (base model, key) index."""
    counts = dict(
        adapters_visible(user).order_by().values_list("base_model").annotate(n=Count("pk"))
    )
    models = list(BaseModel.objects.filter(pk__in=counts))
    for model in models:
        model.adapter_count = counts[model.pk]
    return sorted(models, key=lambda m: (-m.adapter_count, m.identifier))


def _distinct(adapters, field: str) -> list:
    values = adapters.order_by().values_list(field, flat=True).distinct()
    return sorted(v for v in values if v not in ("", None))


def _filter_choices(user) -> dict:
    """The list's filter choices, the home page's base models and the count of the adapters
    `user` can see (cached: they aggregate the whole catalog). Users without private
    adapters see the public ones."""
    scope = "public"
    if user.is_authenticated and user.adapters.filter(private=True).exists():
        scope = f"user:{user.pk}"

    def compute() -> dict:
        visible = adapters_visible(user)
        base_model_counts = _base_models_with_counts(user)
        return {
            "base_models": sorted(base_model_counts, key=lambda m: m.identifier),
            "tasks": _distinct(visible, "task"),
            "licenses": _distinct(visible, "license"),
            "tags": _tag_counts(visible),
            "ranks": _distinct(visible, "current_r"),
            "count": visible.count(),
            "base_model_counts": base_model_counts,
        }

    return cached_choices(scope, compute)


def _tag_counts(visible) -> list[Tag]:
    """Tags of visible adapters with their count `n`, most used first."""
    return list(
        Tag.objects.filter(adapters__in=visible)
        .annotate(n=Count("adapters"))
        .order_by("-n", "name")
    )


def _popular_tags(tags: list[Tag], *, selected: str, limit: int = 30) -> list[Tag]:
    """The `limit` most used of `tags` (see _tag_counts), plus the selected one if rarer."""
    popular = tags[:limit]
    if selected and selected not in {t.name for t in popular}:
        popular += [t for t in tags if t.name == selected]
    return popular
