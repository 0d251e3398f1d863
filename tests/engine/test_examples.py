import pytest

from composer.engine.examples import (
    MAX_FILE_BYTES,
    Example,
    ExamplesError,
    encode_examples,
    load_examples,
    parse_examples,
)


def test_formats_parse_to_the_same_examples():
    want = [Example("a, b", "c"), Example("d", 'e "f"')]
    jsonl = '{"input": "a, b", "output": "c"}\n\n{"input": "d", "output": "e \\"f\\""}\n'
    csv = 'input,output\n"a, b",c\nd,"e ""f"""\n'
    tsv = 'a, b\tc\nd\te "f"\n'
    assert parse_examples(jsonl) == want
    assert parse_examples(csv) == want
    assert parse_examples(tsv, "tsv") == want
    assert parse_examples(tsv) == want  # auto-detected by the tab


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no examples: the input is empty"),
        ('{"input": "a", "output": "b"}\n{"input": "a"', "line 2: invalid JSON"),
        ('{"input": "a"}', "line 1: missing 'output'"),
        ('{"input": 3, "output": "b"}', "line 1: 'input' must be a string"),
        ('["a", "b"]', "line 1: expected an object"),
        ("a,b,c", "line 1: expected 2 columns .* found 3"),
        ('{"input": "a", "output": ""}', "line 1: output is empty"),
    ],
)
def test_bad_examples_name_the_line(text, message):
    with pytest.raises(ExamplesError, match=message):
        parse_examples(text)


def test_limits():
    with pytest.raises(ExamplesError, match="too many examples: more than 3"):
        parse_examples("a,b\n" * 4, max_examples=3)
    with pytest.raises(ExamplesError, match="line 2: input has 11 characters .limit 10."):
        parse_examples("a,b\n" + "x" * 11 + ",b", max_chars=10)
    assert len(parse_examples("a,b\n" * 3, max_examples=3)) == 3


def test_load_examples_errors_name_the_file(tmp_path):
    with pytest.raises(ExamplesError, match="examples file not found"):
        load_examples(tmp_path / "nope.jsonl")
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ExamplesError, match="byte limit"):
        load_examples(big)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("a,b\n")  # the suffix decides the format
    with pytest.raises(ExamplesError, match=r"bad\.jsonl: line 1: invalid JSON"):
        load_examples(bad)


def test_causal_encoding_scores_output_tokens_only(llama):
    ex = [Example("ab", "xyz"), Example("hello", "q")]
    enc = encode_examples(llama.tok, ex, causal=True, separator="=")
    eos = llama.tok.eos_token_id
    row = enc["input_ids"][0].tolist()
    labels = enc["labels"][0].tolist()
    prompt = llama.tok("ab=", add_special_tokens=False).input_ids
    target = llama.tok("xyz", add_special_tokens=False).input_ids + [eos]
    assert row[: len(prompt) + len(target)] == prompt + target
    assert labels[: len(prompt)] == [-100] * len(prompt)
    assert labels[len(prompt) : len(prompt) + len(target)] == target
    assert (
        enc["attention_mask"][1].sum()
        == len(llama.tok("hello=q", add_special_tokens=False).input_ids) + 1
    )
    with pytest.raises(ExamplesError, match="example 2 is 7 tokens long .limit 6."):
        encode_examples(llama.tok, ex, causal=True, max_length=6)


def test_seq2seq_encoding(t5):
    enc = encode_examples(t5.tok, [Example("ab", "xyz"), Example("a", "q")], causal=False)
    eos = t5.tok.eos_token_id
    assert enc["labels"][0].tolist() == t5.tok("xyz", add_special_tokens=False).input_ids + [eos]
    assert enc["labels"][1].tolist()[-2:] == [-100, -100]
