"""Fuzzing the parsers of hostile input: the safetensors header reader, the adapter config
reader, the examples parser, the Hub API commit parser and a model card's front matter.
Whatever the input, each either returns or raises its own error type (a 4xx with a message
upstream), never anything else.

`make test` runs FUZZ_EXAMPLES=300 inputs per parser; `make fuzz` runs 25,000 per parser
(125,000 in all).
"""

import datetime
import io
import json
import os
import struct
from contextlib import ExitStack

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.engine.examples import ExamplesError, parse_examples
from hfapi.commits import commit_read
from hfapi.responses import ApiError
from hub.services.card_metadata import card_metadata
from hub.services.safetensors_header import read_safetensors_header
from hub.services.validation import config_parse

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# JSON-like values, including the ones strict parsing refuses (non-finite floats, NUL).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["LORA", "q", "v", "(", "(a+)+b", ".*", "\x00", "F32", "all-linear"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.sampled_from(["r", "shape"]), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = ["peft_type", "r", "lora_alpha", "target_modules", "rank_pattern", "alpha_pattern"]
configs = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), values, max_size=7)


def dumps(value) -> str:
    return json.dumps(value)  # writes NaN / Infinity for non-finite floats, as attackers do


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


texts = st.text(max_size=300) | st.builds(nested, st.integers(0, 5000))


@st.composite
def safetensors_files(draw) -> bytes:
    tensors = draw(
        st.dictionaries(
            st.text(max_size=12),
            st.fixed_dictionaries(
                {
                    "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", "X"]) | values,
                    "shape": st.lists(st.integers(-1, 2**40), max_size=3) | values,
                    "data_offsets": st.lists(st.integers(-1, 2**40), max_size=3) | values,
                }
            )
            | values,
            max_size=4,
        )
    )
    header = draw(
        st.sampled_from([dumps(tensors), draw(texts), nested(draw(st.integers(0, 99999)))])
    )
    raw = header.encode("utf-8", "surrogatepass")
    declared = draw(
        st.sampled_from([len(raw), len(raw) + 1, 0, 1, 2**63, draw(st.integers(0, 2**64 - 1))])
    )
    return struct.pack("<Q", declared) + raw + draw(st.binary(max_size=64))


@FUZZ
@given(st.binary(max_size=200) | safetensors_files())
def test_safetensors_header_reader(data):
    try:
        read_safetensors_header(
            io.BytesIO(data), len(data), filename="w.safetensors", max_header_bytes=1 << 20
        )
    except ValidationError:
        pass


@FUZZ
@given(st.builds(dumps, configs) | texts)
def test_config_reader(text):
    try:
        config_parse(text)
    except ValidationError:
        pass


example_lines = st.lists(
    st.builds(dumps, st.dictionaries(st.sampled_from(["input", "output", "x"]), values, max_size=3))
    | st.text(max_size=40),
    max_size=5,
)


@FUZZ
@given(st.builds("\n".join, example_lines) | texts)
def test_examples_parser(text):
    try:
        parse_examples(text)
    except ExamplesError:
        pass


commit_values = st.fixed_dictionaries(
    {},
    optional={
        "path": values,
        "summary": values,
        "content": values | st.sampled_from(["aGk=", "!!", ""]),
        "encoding": values,
        "oid": values | st.just("a" * 64),
        "size": values,
        "algo": values,
    },
)
commit_items = st.fixed_dictionaries(
    {
        "key": st.sampled_from(["header", "file", "lfsFile", "deletedFile", "deletedFolder"])
        | values,
        "value": commit_values | values,
    }
)


@FUZZ
@given(st.lists(st.builds(dumps, commit_items) | texts, max_size=6))
def test_commit_parser(lines):
    with ExitStack() as stack:
        try:
            commit_read([line.encode("utf-8", "surrogatepass") for line in lines], stack)
        except ApiError:
            pass


# Front matter of every YAML shape: keys that are not text (numbers, dates, null), the
# recognised keys holding lists, mappings or numbers, and scalars YAML reads specially.
yaml_scalars = (
    scalars
    | st.dates(min_value=datetime.date(1, 1, 1))
    | st.sampled_from(["9" * 5000, "2024-13-45", ".nan", "~", "0x1F", "1e999", "!!binary x"])
)
yaml_keys = (
    st.sampled_from(["license", "tags", "pipeline_tag", "datasets", "language", "base_model"])
    | st.sampled_from(["base_model_relation", "model-index"])
    | st.integers()
    | st.none()
    | st.booleans()
    | st.dates(min_value=datetime.date(1, 1, 1))
    | st.text(max_size=8)
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(yaml_keys, inner, max_size=4),
    max_leaves=20,
)


def front_matter(data) -> str:
    import yaml

    return "---\n" + yaml.safe_dump(data, allow_unicode=True) + "---\n# Card\n"


# A raw line, a key and a value as written: what safe_dump would have quoted is not.
raw_lines = st.builds(
    lambda k, v: f"{k}: {v}",
    st.sampled_from(["license", "pipeline_tag", "tags", "1", "null", "2024-01-01", "? [a]"]),
    st.sampled_from(["[a, b]", "{a: 1}", "9" * 5000, "2024-13-45", "&a x", "*a", ".inf", "!!set"])
    | st.text(max_size=20),
)


@FUZZ
@given(
    st.builds(front_matter, st.dictionaries(yaml_keys, yaml_values, max_size=6) | yaml_values)
    | st.builds(lambda lines: "---\n" + "\n".join(lines) + "\n---\n", st.lists(raw_lines))
)
def test_card_front_matter(card):
    try:
        card_metadata(card, 10)
    except ValidationError:
        pass


@pytest.mark.parametrize(
    "reader, error",
    [
        (lambda: config_parse(nested(100_000)), ValidationError),
        (lambda: parse_examples(nested(100_000)), ExamplesError),
    ],
)
def test_deep_nesting_is_refused_by_each_parser(reader, error):
    with pytest.raises(error, match="nested more than 32"):
        reader()
