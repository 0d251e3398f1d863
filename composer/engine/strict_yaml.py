"""YAML from strangers (a README's front matter): bounded nesting, no aliases.

`yaml.safe_load` builds nested nodes recursively (a RecursionError for deep nesting) and
expands nothing but shares aliased nodes, which a later JSON dump multiplies ("billion
laughs"). `loads` first walks the event stream (no recursion, no values built), refusing
nesting deeper than MAX_DEPTH, aliases and more than MAX_NODES nodes; then the value must
pass the same checks as strict JSON (no NUL characters, no `.nan` / `.inf`).
"""

import yaml

from .strict_json import MAX_DEPTH, JSONInputError, check_value

MAX_NODES = 100_000
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class YAMLInputError(ValueError):
    """The text is not acceptable YAML; the message is one human-readable line."""


def loads(text: str, *, max_depth: int = MAX_DEPTH):
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
            if nodes > MAX_NODES:
                raise YAMLInputError(f"it has more than {MAX_NODES:,} nodes")
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise YAMLInputError(" ".join(str(exc).split())[:300]) from None
    try:
        check_value(value, max_depth=max_depth)
    except JSONInputError as exc:
        raise YAMLInputError(str(exc)) from None
    return value
