"""YAML from strangers (a README's front matter): bounded nesting, no aliases.

`yaml.safe_load` builds nested nodes recursively (a RecursionError for deep nesting) and
expands nothing but shares aliased nodes, which a later JSON dump multiplies ("billion
laughs"). `loads` first walks the event stream (no recursion, no values built), refusing
nesting deeper than MAX_DEPTH, aliases and more than MAX_NODES nodes; then the value must
pass the same checks as strict JSON (no NUL characters, no `.nan` / `.inf`) and, as JSON's,
its mappings have string keys. Values YAML cannot build (a 5,000-digit integer, a 13th
month) are refused like malformed YAML.
"""

import yaml

from .strict_json import MAX_DEPTH, JSONInputError, check_value

MAX_NODES = 100_000
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class YAMLInputError(ValueError):
    """The text is not acceptable YAML; the message is one human-readable line."""


def loads(text: str, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES):
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                raise YAMLInputError("aliases (*name) are not accepted")
            if isinstance(event, _OPEN):
                depth += 1
                if depth > max_depth:
                    raise YAMLInputError(f"it is nested more than {max_depth} levels deep")
            elif isinstance(event, _CLOSE):
                depth -= 1
            nodes += 1
            if nodes > max_nodes:
                raise YAMLInputError(f"it has more than {max_nodes:,} nodes")
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except YAMLInputError:
        raise  # a ValueError too: not to be read as an unbuildable scalar below
    except yaml.YAMLError as exc:
        raise YAMLInputError(" ".join(str(exc).split())[:300]) from None
    except (ValueError, OverflowError) as exc:
        # A scalar the safe loader cannot build: an integer over Python's 4,300 digits, a
        # date like 2024-13-45.
        reason = " ".join(str(exc).split()).split(";")[0][:200]
        raise YAMLInputError(f"a number or date in it cannot be read ({reason})") from None
    _check_keys(value)
    try:
        check_value(value, max_depth=max_depth)
    except JSONInputError as exc:
        raise YAMLInputError(str(exc)) from None
    return value


def _check_keys(value) -> None:
    """Refuse mappings with keys that are not strings (`1: x`, `2024-01-01: x`, `null: x`),
    walking the value without recursion (its depth is bounded by then)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    raise YAMLInputError(f"a key is {str(key)[:40]!r}; keys must be text")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
