import markdown as md
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

MARKDOWN_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]


@register.filter
def render_markdown(text: str) -> str:
    """Markdown to HTML, sanitised: scripts, event handlers and javascript: links are
    removed (nh3's allow-list), so a model card can never run code."""
    html = md.markdown(text or "", extensions=MARKDOWN_EXTENSIONS, output_format="html")
    return mark_safe(nh3.clean(html))  # sanitised just above


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
