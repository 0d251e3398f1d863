"""README.md as the clients read it: front matter that says what the adapter's fields say.

`ModelCard.load` and `model_info().card_data` read an adapter's README.md. An adapter made
in the browser gets one written from its fields, a browser edit rewrites it (a new
version, as an edit on the Hub is a commit), and a pushed card without front matter gets
the fields' block above its text. Keys the catalog does not keep (model-index, metrics,
widget...) are carried over from the previous card's block.
"""

import yaml

from composer.engine import strict_yaml

from .card_metadata import FRONT, MAX_DEPTH, MAX_NODES
from .stored_reads import blob_reader
from .validation import CARD_FILE, MAX_TEXT_BYTES

# What the fields say: these keys are always rewritten from them.
OWNED = (
    "base_model",
    "library_name",
    "license",
    "pipeline_tag",
    "tags",
    "datasets",
    "language",
    "base_model_relation",
)


def front_matter_of(card: str | None) -> dict:
    """The data of `card`'s front matter; {} without one (or an unreadable one)."""
    match = FRONT.match(card or "")
    if not match:
        return {}
    try:
        data = strict_yaml.loads(match[1], max_depth=MAX_DEPTH, max_nodes=MAX_NODES)
    except strict_yaml.YAMLInputError:
        return {}
    return data if isinstance(data, dict) else {}


def stored_card(version) -> str | None:
    """The README.md text `version` holds (None without one), read within its bound."""
    stored = version and version.files.filter(filename=CARD_FILE).select_related("blob").first()
    if stored is None or stored.blob.size > MAX_TEXT_BYTES:
        return None
    with blob_reader(stored.blob) as fh:
        return fh.read(MAX_TEXT_BYTES).decode("utf-8", "replace")


def has_front_matter(card: str | None) -> bool:
    return bool(FRONT.match(card or ""))


def card_file(
    *,
    body: str,
    base_model: str,
    license: str,
    task: str,
    tags,
    card_data: dict,
    previous: str | None = None,
) -> str:
    """README.md's text: the fields' front matter, the previous block's other keys, `body`."""
    front = {"base_model": base_model, "library_name": "peft"}
    if license:
        front["license"] = license
    if task:
        front["pipeline_tag"] = task
    if tags := list(tags):
        front["tags"] = tags
    front.update(card_data)  # datasets, language; a merge's parents and relation
    kept = front_matter_of(previous)
    front.update({k: v for k, v in kept.items() if k not in OWNED})
    block = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    return f"---\n{block}---\n\n{body.strip()}\n"
