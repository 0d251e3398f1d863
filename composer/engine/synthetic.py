"""Synthetic string tasks for the tiny trained suite (base models, task adapters, benchmarks).

A task is an operation on a string (reverse, upper, sort, ...) applied to inputs drawn from
one input domain (lower-case letters, digits, ...). Everything is deterministic: the
examples of a task depend only on the task's name, the seed and the count.

Two input formats:
- prefixed, `"<tag>:<input>"` (a two-letter tag per operation): the base model learns
  every operation this way, on inputs from every domain, so it has the skills and the
  output format;
- raw, `"<input>"`: with no prefix the base model copies its input. A task adapter is
  trained on raw inputs of one task, so it switches the base model to that task's operation.

The held-out tasks pair an operation with a domain (or chain two operations) that no
adapter was trained on: composing adapters has to find and transfer the right skill.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass

from composer.engine.examples import Example

VOWELS = set("aeiouAEIOU")
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
DIGITS = "0123456789"

DOMAINS: dict[str, str] = {
    "lower": LOWER,
    "upper": UPPER,
    "digits": DIGITS,
    "mixed": LOWER + DIGITS,
}


def _shift(s: str, k: int) -> str:
    """Shift each letter (within its case) and each digit by k, cyclically."""
    out = []
    for c in s:
        for alphabet in (LOWER, UPPER, DIGITS):
            if c in alphabet:
                c = alphabet[(alphabet.index(c) + k) % len(alphabet)]
                break
        out.append(c)
    return "".join(out)


def _swap_pairs(s: str) -> str:
    chars = list(s)
    for i in range(0, len(chars) - 1, 2):
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


OPS: dict[str, Callable[[str], str]] = {
    "copy": lambda s: s,
    "reverse": lambda s: s[::-1],
    "upper": str.upper,
    "lower": str.lower,
    "swapcase": str.swapcase,
    "shift1": lambda s: _shift(s, 1),
    "unshift1": lambda s: _shift(s, -1),
    "shift3": lambda s: _shift(s, 3),
    "double": lambda s: "".join(c + c for c in s),
    "repeat": lambda s: s + s,
    "mirror": lambda s: s + s[::-1],
    "first": lambda s: s[0],
    "last": lambda s: s[-1],
    "ends": lambda s: s[0] + s[-1],
    "length": lambda s: str(len(s)),
    "drop_vowels": lambda s: "".join(c for c in s if c not in VOWELS),
    "mask_vowels": lambda s: "".join("*" if c in VOWELS else c for c in s),
    "rotate_left": lambda s: s[1:] + s[:1],
    "rotate_right": lambda s: s[-1:] + s[:-1],
    "swap_pairs": _swap_pairs,
}


@dataclass(frozen=True)
class Task:
    """Operations `ops` (applied left to right) on strings from `domain`."""

    name: str
    ops: tuple[str, ...]
    domain: str
    min_len: int = 3
    max_len: int = 6

    def apply(self, s: str) -> str:
        for op in self.ops:
            s = OPS[op](s)
        return s

    def sample_input(self, rng: random.Random) -> str:
        alphabet = DOMAINS[self.domain]
        n = rng.randint(self.min_len, self.max_len)
        return "".join(rng.choice(alphabet) for _ in range(n))

    def examples(
        self, n: int, seed: int = 0, *, prefixed: bool = False, suffix: str = ""
    ) -> list[Example]:
        """n deterministic examples with distinct inputs (while the domain allows).

        `suffix` ends every input (causal models need to see where the input stops)."""
        rng = random.Random(f"{self.name}:{seed}:{int(prefixed)}")
        seen: set[str] = set()
        pairs = []
        for _ in range(50 * n):
            if len(pairs) == n:
                break
            s = self.sample_input(rng)
            if s in seen:
                continue
            seen.add(s)
            inp = format_input(self.ops[0], s) if prefixed else s
            pairs.append(Example(inp + suffix, self.apply(s)))
        return pairs


# Two-letter tags: every prefixed input starts its string at the same position, which a
# tiny model aligns far more easily than names of varying length.
OP_TAGS: dict[str, str] = {
    "copy": "cp",
    "reverse": "rv",
    "upper": "up",
    "lower": "lo",
    "swapcase": "sw",
    "shift1": "s1",
    "unshift1": "u1",
    "shift3": "s3",
    "double": "dd",
    "repeat": "rp",
    "mirror": "mi",
    "first": "fi",
    "last": "la",
    "ends": "en",
    "length": "ln",
    "drop_vowels": "dv",
    "mask_vowels": "mv",
    "rotate_left": "rl",
    "rotate_right": "rr",
    "swap_pairs": "sp",
}


def format_input(op: str, s: str) -> str:
    return f"{OP_TAGS[op]}:{s}"


def _task(ops: str, domain: str) -> Task:
    return Task(
        name=f"{ops.replace('+', '_then_')}@{domain}", ops=tuple(ops.split("+")), domain=domain
    )


# One adapter per training task (raw inputs, lower-case letters unless the operation needs
# another domain to be visible).
TRAIN_TASKS: tuple[Task, ...] = tuple(
    _task(op, domain)
    for op, domain in [
        ("reverse", "lower"),
        ("upper", "lower"),
        ("lower", "upper"),
        ("swapcase", "mixed"),
        ("shift1", "lower"),
        ("unshift1", "lower"),
        ("shift3", "lower"),
        ("double", "lower"),
        ("repeat", "lower"),
        ("mirror", "lower"),
        ("first", "lower"),
        ("last", "lower"),
        ("ends", "lower"),
        ("length", "lower"),
        ("drop_vowels", "lower"),
        ("mask_vowels", "lower"),
        ("rotate_left", "lower"),
        ("rotate_right", "lower"),
        ("swap_pairs", "lower"),
    ]
)

# No adapter saw these: a known operation on another domain, or two operations chained.
HELDOUT_TASKS: tuple[Task, ...] = tuple(
    _task(op, domain)
    for op, domain in [
        ("reverse", "digits"),
        ("shift1", "digits"),
        ("double", "upper"),
        ("rotate_left", "digits"),
        ("last", "upper"),
        ("mirror", "digits"),
        ("swap_pairs", "upper"),
        ("reverse+upper", "lower"),
        ("shift1+double", "lower"),
        ("first", "digits"),
        ("ends", "upper"),
        ("length", "digits"),
        ("upper", "mixed"),
        ("rotate_right", "digits"),
    ]
)

# Two operations chained where each has its own adapter: where mixing adapters might do
# what no single one does (no adapter saw these; only the benchmark uses them).
MIX_TASKS: tuple[Task, ...] = tuple(
    _task(ops, domain)
    for ops, domain in [
        ("double+upper", "lower"),
        ("reverse+shift1", "lower"),
        ("last+upper", "lower"),
        ("rotate_left+upper", "lower"),
    ]
)

# For merging: one task per input domain, no two domains sharing a character, so that one
# merged adapter can hold every task at once (each adapter is trained to copy, as the base
# model does, on the other domains).
MERGE_TASKS: tuple[Task, ...] = tuple(
    _task(op, domain)
    for op, domain in [("reverse", "lower"), ("shift1", "upper"), ("double", "digits")]
)

TASKS: dict[str, Task] = {t.name: t for t in TRAIN_TASKS + HELDOUT_TASKS + MIX_TASKS + MERGE_TASKS}

# Domains the base model sees every operation on (prefixed format).
BASE_DOMAINS: tuple[str, ...] = ("lower", "upper", "digits", "mixed")


def base_mixture(n: int, seed: int = 0, *, suffix: str = "") -> list[Example]:
    """n examples for the base model: every operation, prefixed, on every base domain, plus
    raw inputs that are copied (the base model's behaviour without a prefix)."""
    rng = random.Random(f"base-mixture:{seed}")
    ops = [op for op in OPS if op != "copy"]
    pairs = []
    for _ in range(n):
        domain = rng.choice(BASE_DOMAINS)
        task = Task(name="", ops=(rng.choice(ops),), domain=domain)
        s = task.sample_input(rng)
        if rng.random() < 0.15:
            pairs.append(Example(s + suffix, s))
        else:
            pairs.append(Example(format_input(task.ops[0], s) + suffix, task.apply(s)))
    return pairs


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown synthetic task {name!r}; known: {', '.join(TASKS)}") from None
