"""peft's module-name patterns, matched in linear time.

An adapter config names its modules with patterns that peft matches against module paths:
`target_modules` as a string is a regex that must match the whole path, and the keys of
`rank_pattern` / `alpha_pattern` are regexes matched against the path's tail
(`(.*\\.)?(<key>)$`). Configs come from strangers, and Python's backtracking `re` can take
exponential time (`(a+)+b`), so they are compiled with RE2, whose matching is linear in the
path's length. RE2 refuses backreferences and lookaround; such a pattern is refused too.

The keys of one `rank_pattern` / `alpha_pattern` are compiled once into an RE2 set
(`PatternMatcher`) that matches a module path against every key in one pass. Even so a set
of keys that keep many states alive costs up to about 250 ns per key and character of module
path, so the keys are counted (MAX_PATTERN_KEYS) and keys × characters of the module paths
are bounded (MAX_PATTERN_WORK) before any matching.
"""

from collections.abc import Collection, Mapping
from functools import lru_cache

import re2

MAX_PATTERN_CHARS = 1000
# peft users write a handful of keys, or one full module path per module whose rank differs
# (224 for every linear layer of an 8B Llama).
MAX_PATTERN_KEYS = 256
# Keys × characters of the module paths they are matched against: at most about a second
# of the worst keys (measured in bench/hostile_inputs.py); 256 full-path keys against the
# 224 modules of an 8B Llama are 2.5 million.
MAX_PATTERN_WORK = 4_000_000

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the caller's message, not a log line
_OPTIONS.max_mem = 8 << 20  # bytes for one compiled pattern (or one set of them)


class PatternError(ValueError):
    """A pattern RE2 cannot compile (or too long); the message says why in one line."""


@lru_cache(maxsize=1024)
def pattern_compile(pattern: str):
    """The compiled pattern, or PatternError."""
    if not isinstance(pattern, str) or not pattern:
        raise PatternError("a pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"a pattern has at most {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise PatternError(
            f"{pattern[:80]!r} is not a regular expression RE2 accepts ({reason})"
        ) from None


def is_targeted(module: str, targets: Collection[str] | str) -> bool:
    """peft's rule: a string is a regex the whole module path must match ("all-linear"
    targets every linear layer); a list names paths or their last dotted components."""
    if targets == "all-linear":
        return True
    if isinstance(targets, str):
        return pattern_compile(targets).fullmatch(module) is not None
    # The path's dotted tails looked up in a set: one look-up per dot, not one per target.
    names = targets if isinstance(targets, set | frozenset) else set(targets)
    parts = module.split(".")
    return any(".".join(parts[i:]) in names for i in range(len(parts)))


def pattern_work_check(patterns: Collection[Mapping], modules: Collection[str]) -> None:
    """Refuse, before any matching, more than MAX_PATTERN_KEYS keys in one of `patterns`
    or more than MAX_PATTERN_WORK keys × characters of `modules` in all of them."""
    for keys in patterns:
        if len(keys) > MAX_PATTERN_KEYS:
            raise PatternError(f"at most {MAX_PATTERN_KEYS} patterns are accepted")
    work = sum(len(keys) for keys in patterns) * sum(len(m) for m in modules)
    if work > MAX_PATTERN_WORK:
        raise PatternError(
            f"{sum(len(keys) for keys in patterns):,} patterns matched against "
            f"{len(modules):,} modules is more matching than accepted: name modules by a few "
            "shared patterns rather than one per module"
        )


class PatternMatcher:
    """The keys of one `rank_pattern` / `alpha_pattern`, compiled once into an RE2 set.

    `value(module, default)` is the value of the first key, in the mapping's order (as peft
    takes it), whose pattern matches the module path's tail, else `default`.
    """

    def __init__(self, patterns: Mapping[str, object] | None):
        patterns = patterns or {}
        if len(patterns) > MAX_PATTERN_KEYS:
            raise PatternError(f"at most {MAX_PATTERN_KEYS} patterns are accepted")
        self._values = list(patterns.values())
        self._set = None
        if not patterns:
            return
        # Anchored at both ends, `(?:.*\.)?(?:key)` is peft's `(.*\.)?(key)$`.
        self._set = re2.Set.FullMatchSet(_OPTIONS)
        try:
            for key in patterns:
                pattern_compile(key)  # refuses, with its message, what RE2 cannot compile
                self._set.Add(rf"(?:.*\.)?(?:{key})")
            self._set.Compile()
        except re2.error:
            raise PatternError("the patterns together are too large to compile") from None

    def value(self, module: str, default):
        if self._set is None:
            return default
        found = self._set.Match(module)
        return self._values[min(found)] if found else default


def pattern_value(module: str, patterns: Mapping[str, object] | None, default):
    """The value of the first key of `rank_pattern` / `alpha_pattern` that matches the
    module path's tail, else `default` (for one module; `PatternMatcher` for many)."""
    return PatternMatcher(patterns).value(module, default)
