"""Metadata from a model card's YAML front matter, as the Hugging Face Hub reads it.

Recognised keys: license, tags, pipeline_tag, datasets, language, base_model,
base_model_relation. Each value is checked for its type and spelling and bounded in count
and length; anything else in the block is left to the card. Parsed with strict_yaml
(bounded nesting, no aliases) from a README already capped at LORAHUB_MAX_CARD_BYTES.
"""

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.text import slugify

from composer.engine import strict_yaml

from ..choices import LICENSE_LABELS, TASK_LABELS

FRONT = re.compile(r"\A---\r?\n(.*?)\r?\n---\r?\n", re.DOTALL)
# A model-index (evaluation results, as Trainer and metadata_update write them) nests
# model-index > results > metrics, or dataset > args: 8 levels; 10 leaves room, and
# MAX_NODES bounds the rest.
MAX_DEPTH = 10
MAX_ITEMS = 20  # per list (datasets, languages, base models)
# A long model-index of evaluation results is a few hundred nodes; the parser stops here.
MAX_NODES = 5_000
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
LANGUAGE = re.compile(r"[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?")
RELATIONS = {"adapter", "merge", "finetune", "quantized"}


@dataclass
class CardMetadata:
    license: str = ""
    task: str = ""
    tags: list[str] = field(default_factory=list)
    # What the catalog keeps as the adapter's card data (datasets, language, base_model...).
    extra: dict = field(default_factory=dict)


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _strings(value, what: str) -> list[str]:
    """A string or a list of strings, as the Hub accepts for these keys."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValidationError(f"The model card's {what} must be a string or a list of strings.")
    if len(items) > MAX_ITEMS:
        raise ValidationError(f"The model card lists more than {MAX_ITEMS} {what}.")
    return [i.strip() for i in items if i.strip()]


def _checked(items: list[str], pattern: re.Pattern, what: str) -> list[str]:
    for item in items:
        if not pattern.fullmatch(item):
            raise ValidationError(f"The model card's {what} {item[:100]!r} is not valid.")
    return list(dict.fromkeys(items))


def card_metadata(card: str, max_tags: int) -> CardMetadata:
    """The metadata of `card`'s front matter (empty without one). Raises ValidationError
    with a message for the uploader when the block is not valid."""
    match = FRONT.match(card or "")
    if not match:
        return CardMetadata()
    try:
        data = strict_yaml.loads(match[1], max_depth=MAX_DEPTH, max_nodes=MAX_NODES)
    except strict_yaml.YAMLInputError as exc:
        raise ValidationError(
            f"The model card's metadata block (YAML front matter) is not valid: {exc}",
            code="card",
        ) from None
    if data is None:
        return CardMetadata()
    if not isinstance(data, dict):
        raise ValidationError("The model card's metadata block must be a YAML mapping.")
    meta = CardMetadata()
    if isinstance(data.get("license"), str):
        license = data["license"].strip().lower()
        meta.license = license if license in LICENSE_LABELS else "other"
    # Any YAML shape may come: a list or a mapping is no task, no relation.
    if _text(data.get("pipeline_tag")) in TASK_LABELS:
        meta.task = data["pipeline_tag"]
    if "tags" in data:
        # "base_model:adapter:<id>", "license:mit"...: the Hub derives such tags itself.
        tags = [slugify(t)[:50] for t in _strings(data["tags"], "tags") if ":" not in t]
        meta.tags = list(dict.fromkeys(t for t in tags if t))
        if len(meta.tags) > max_tags:
            raise ValidationError(f"The model card lists more than {max_tags} tags.")
    lists = {
        "datasets": ("datasets", REPO_ID, "dataset"),
        "language": ("languages", LANGUAGE, "language"),
    }
    for key, (plural, pattern, singular) in lists.items():
        if key in data:
            meta.extra[key] = _checked(_strings(data[key], plural), pattern, singular)
    if "base_model" in data:
        # peft's save_pretrained writes the local folder it loaded the base from: only
        # repository ids are lineage.
        models = [m for m in _strings(data["base_model"], "base models") if REPO_ID.fullmatch(m)]
        if models:
            # Kept in the card's own form (one id or a list), as the Hub's card data is.
            single = isinstance(data["base_model"], str)
            meta.extra["base_model"] = models[0] if single else list(dict.fromkeys(models))
    if _text(data.get("base_model_relation")) in RELATIONS:
        meta.extra["base_model_relation"] = data["base_model_relation"]
    return meta
