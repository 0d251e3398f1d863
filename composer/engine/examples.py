"""Task examples: parsing (JSON lines, CSV, tab-separated), limits, and tokenising.

`parse_examples(text)` accepts
- JSON lines: one object per line with string fields "input" and "output";
- CSV or tab-separated: two columns input, output, with an optional header row
  `input,output` (quoted CSV fields may span lines).
Blank lines are skipped. Limits: `MAX_EXAMPLES` examples, `MAX_CHARS` characters per field,
`MAX_FILE_BYTES` for a file. Every problem raises `ExamplesError` with a one-line message
that names the line.

`encode_examples` tokenises once for the whole optimisation: seq2seq models read the input
and are scored on the output + EOS; causal models read `input + separator` (after the
tokenizer's BOS, if it has one) and are scored on the output + EOS tokens only.
"""

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

MAX_EXAMPLES = 5000
MAX_CHARS = 8000
MAX_FILE_BYTES = 20 * 1024 * 1024
FORMATS = ("auto", "jsonl", "csv", "tsv")


class ExamplesError(ValueError):
    """The examples cannot be used; the message is one human-readable line."""


@dataclass(frozen=True)
class Example:
    input: str
    output: str


def parse_examples(
    text: str,
    fmt: str = "auto",
    *,
    max_examples: int = MAX_EXAMPLES,
    max_chars: int = MAX_CHARS,
) -> list[Example]:
    """Parse examples from text; `fmt` is "auto", "jsonl", "csv" or "tsv"."""
    if fmt not in FORMATS:
        raise ExamplesError(f"unknown examples format {fmt!r} (use one of {', '.join(FORMATS)})")
    if not text.strip():
        raise ExamplesError("no examples: the input is empty")
    if fmt == "auto":
        fmt = _detect(text)
    rows = _parse_jsonl(text) if fmt == "jsonl" else _parse_delimited(text, fmt)
    examples = []
    for line, inp, out in rows:
        for field, value in (("input", inp), ("output", out)):
            if len(value) > max_chars:
                raise ExamplesError(
                    f"line {line}: {field} has {len(value)} characters (limit {max_chars})"
                )
        if not inp.strip() and not out.strip():
            raise ExamplesError(f"line {line}: both input and output are empty")
        if not out:
            raise ExamplesError(f"line {line}: output is empty")
        examples.append(Example(inp, out))
        if len(examples) > max_examples:
            raise ExamplesError(f"too many examples: more than {max_examples}")
    if not examples:
        raise ExamplesError("no examples found")
    return examples


def load_examples(path: str | Path, fmt: str = "auto", **limits) -> list[Example]:
    """Read and parse an examples file (format from the suffix when `fmt` is "auto")."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ExamplesError(f"{p}: {size} bytes is over the {MAX_FILE_BYTES} byte limit")
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ExamplesError(f"examples file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ExamplesError(f"{p}: unreadable ({' '.join(str(e).split())})") from None
    if fmt == "auto":
        fmt = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv"}.get(p.suffix.lower(), "auto")
    try:
        return parse_examples(text, fmt, **limits)
    except ExamplesError as e:
        raise ExamplesError(f"{p}: {e}") from None


def _detect(text: str) -> str:
    first = next(line for line in text.splitlines() if line.strip())
    if first.lstrip().startswith(("{", "[")):
        return "jsonl"
    return "tsv" if "\t" in first else "csv"


def _parse_jsonl(text: str) -> list[tuple[int, str, str]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ExamplesError(f"line {n}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise ExamplesError(f'line {n}: expected an object {{"input": ..., "output": ...}}')
        missing = [k for k in ("input", "output") if k not in obj]
        if missing:
            raise ExamplesError(f"line {n}: missing {' and '.join(repr(k) for k in missing)}")
        for k in ("input", "output"):
            if not isinstance(obj[k], str):
                raise ExamplesError(f"line {n}: {k!r} must be a string")
        rows.append((n, obj["input"], obj["output"]))
    return rows


def _parse_delimited(text: str, fmt: str) -> list[tuple[int, str, str]]:
    reader = csv.reader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ",")
    rows = []
    try:
        for record in reader:
            n = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if not rows and [c.strip().lower() for c in record] == ["input", "output"]:
                rows.append(None)  # the header row
                continue
            if len(record) != 2:
                raise ExamplesError(
                    f"line {n}: expected 2 columns (input, output), found {len(record)}"
                )
            rows.append((n, record[0], record[1]))
    except csv.Error as e:
        raise ExamplesError(f"line {reader.line_num}: {e}") from None
    return [r for r in rows if r is not None]


# ---------------------------------------------------------------- tokenising


def causal_prompt_ids(tok, text: str, separator: str = "") -> list[int]:
    """Token ids of a causal prompt: BOS (if the tokenizer has one) + input + separator."""
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    return bos + tok(text + separator, add_special_tokens=False).input_ids


def encode_examples(
    tok,
    examples: Sequence[Example],
    *,
    causal: bool,
    separator: str = "",
    max_length: int | None = None,
) -> dict[str, torch.Tensor]:
    """Padded `input_ids`, `attention_mask` and `labels` (-100 where no loss is taken)."""
    if not examples:
        raise ExamplesError("no examples")
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    if causal:
        rows, label_rows = [], []
        for ex in examples:
            prompt = causal_prompt_ids(tok, ex.input, separator)
            target = tok(ex.output, add_special_tokens=False).input_ids + [eos]
            rows.append(prompt + target)
            label_rows.append([-100] * len(prompt) + target)
        _check_length(rows, max_length)
        input_ids, mask = _pad(rows, pad)
        labels, _ = _pad(label_rows, -100)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
    inputs = [tok(ex.input).input_ids for ex in examples]
    targets = [tok(ex.output).input_ids for ex in examples]
    _check_length(inputs, max_length)
    _check_length(targets, max_length)
    input_ids, mask = _pad(inputs, pad)
    labels, _ = _pad(targets, -100)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def _check_length(rows: list[list[int]], max_length: int | None) -> None:
    if max_length is None:
        return
    for i, row in enumerate(rows, 1):
        if len(row) > max_length:
            raise ExamplesError(f"example {i} is {len(row)} tokens long (limit {max_length})")


def _pad(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.long)
    return ids, mask
