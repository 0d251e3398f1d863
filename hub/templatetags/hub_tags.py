from django import template
from django.utils.safestring import mark_safe

from hub.services.cards import card_render
from hub.services.repo_files import is_pickle

register = template.Library()


@register.filter
def render_markdown(text: str) -> str:
    """Markdown to sanitised HTML (hub.services.cards), for text only admins write, such as
    a base model's description; adapters' cards are rendered when they are written."""
    return mark_safe(card_render(text or ""))  # sanitised by card_render


@register.filter
def pickle_file(filename: str) -> bool:
    """A stored pickle (training_args.bin...): offered for download, never loaded."""
    return is_pickle(filename)


@register.filter
def compact(number) -> str:
    """1234 -> 1.2k, 3400000 -> 3.4M."""
    try:
        n = float(number)
    except (TypeError, ValueError):
        return ""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{n:.0f}"


@register.filter
def number(value) -> str:
    """An alpha like 16.0 shown as 16, 0.5 kept."""
    return f"{value:g}" if isinstance(value, float) else str(value)


@register.filter
def as_list(value) -> list:
    """target_modules is a list of names (shown sorted: peft saves a set) or one regex."""
    return [value] if isinstance(value, str) else sorted(value or [])


@register.simple_tag(takes_context=True)
def return_path(context) -> str:
    """Where "Log in" and "Sign up" send the visitor back to: this page, or on the account
    pages themselves the page that sent them there."""
    request = context.get("request")
    if request is None:
        return ""
    if request.path.startswith("/accounts/"):
        return request.GET.get("next", "")
    return request.get_full_path()
