"""peft's module-name patterns, matched in linear time.

An adapter config names its modules with patterns that peft matches against module paths:
`target_modules` as a string is a regex that must match the whole path, and the keys of
`rank_pattern` / `alpha_pattern` are regexes matched against the path's tail
(`(.*\\.)?(<key>)$`). Configs come from strangers, and Python's backtracking `re` can take
exponential time (`(a+)+b`), so they are compiled with RE2, whose matching is linear in the
path's length. RE2 refuses backreferences and lookaround; such a pattern is refused too.
"""

from collections.abc import Mapping
from functools import lru_cache

import re2

MAX_PATTERN_CHARS = 1000

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the caller's message, not a log line
_OPTIONS.max_mem = 8 << 20  # bytes for one compiled pattern


class PatternError(ValueError):
    """A pattern RE2 cannot compile (or too long); the message says why in one line."""


@lru_cache(maxsize=1024)
def pattern_compile(pattern: str, *, tail: bool = False):
    """The compiled pattern; with `tail`, in peft's key form `(.*\\.)?(<pattern>)$`."""
    if not isinstance(pattern, str) or not pattern:
        raise PatternError("a pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"a pattern has at most {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(rf"(.*\.)?({pattern})$" if tail else pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise PatternError(
            f"{pattern[:80]!r} is not a regular expression RE2 accepts ({reason})"
        ) from None


def is_targeted(module: str, targets: list[str] | str) -> bool:
    """peft's rule: a string is a regex the whole module path must match ("all-linear"
    targets every linear layer); a list names paths or their last dotted components."""
    if targets == "all-linear":
        return True
    if isinstance(targets, str):
        return pattern_compile(targets).fullmatch(module) is not None
    return any(module == t or module.endswith(f".{t}") for t in targets)


def pattern_value(module: str, patterns: Mapping[str, object] | None, default):
    """The value of the first key of `rank_pattern` / `alpha_pattern` that matches the
    module path's tail, else `default`."""
    for key, value in (patterns or {}).items():
        if pattern_compile(key, tail=True).match(module):
            return value
    return default
