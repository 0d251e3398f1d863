"""JSON from strangers: parsed with bounded nesting and without the values a database or
the next reader chokes on.

`json.loads` alone accepts `NaN` and `Infinity` (not JSON; PostgreSQL refuses them), strings
holding NUL (PostgreSQL's jsonb refuses them) and nesting as deep as the C parser's
recursion guard allows (a RecursionError there, and deeper still in code that walks the
result recursively). `loads` refuses all three with `JSONInputError`.
"""

import json
import math

MAX_DEPTH = 32


class JSONInputError(ValueError):
    """The text is not acceptable JSON; the message is one human-readable line."""


def _no_constant(name: str):
    raise JSONInputError(f"{name} is not a JSON number")


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH):
    """Parse `text` (UTF-8 if bytes); raise JSONInputError for anything unacceptable."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise JSONInputError(f"it is nested more than {max_depth} levels deep") from None
    except UnicodeDecodeError:
        raise JSONInputError("it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    check_value(value, max_depth=max_depth)
    return value


def check_value(value, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than `max_depth`, NUL characters in strings and non-finite
    floats, walking the value without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise JSONInputError(f"it is nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key in item:
                    _check_string(key)
                children = item.values()
            else:
                children = item
            stack.extend((child, depth + 1) for child in children if not _is_plain(child))
        elif isinstance(item, str):
            _check_string(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise JSONInputError("it holds a number that is not finite")


def _is_plain(value) -> bool:
    return value is None or isinstance(value, bool | int)


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise JSONInputError("a string in it holds a NUL character (\\u0000)")
