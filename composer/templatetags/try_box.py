"""`{% try_box version=... %}` / `{% try_box job=... %}`: the "Try it" box of a page."""

from django import template
from django.conf import settings

from composer.try_it import trial_base_model, try_examples

register = template.Library()


@register.inclusion_tag("composer/_try_it.html", takes_context=True)
def try_box(context, version=None, job=None):
    base = trial_base_model(version=version, job=job)
    return {
        "request": context["request"],
        "version": version,
        "job": job,
        "base": base,
        "available": base is not None and bool(base.commit or base.local_path),
        "examples": try_examples(version=version, job=job),
        "max_chars": settings.COMPOSER_TRY_MAX_CHARS,
    }
