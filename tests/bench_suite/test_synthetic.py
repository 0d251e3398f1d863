"""The synthetic tasks are deterministic and compute what their names say."""

import pytest

from composer.engine import synthetic
from composer.engine.synthetic import OPS, get_task


@pytest.mark.parametrize(
    ("op", "given", "expected"),
    [
        ("reverse", "abc", "cba"),
        ("upper", "ab1", "AB1"),
        ("lower", "AbC", "abc"),
        ("swapcase", "aB3", "Ab3"),
        ("shift1", "az9", "ba0"),
        ("unshift1", "ba0", "az9"),
        ("shift3", "xyZ", "abC"),
        ("double", "ab", "aabb"),
        ("repeat", "ab", "abab"),
        ("mirror", "ab", "abba"),
        ("first", "xyz", "x"),
        ("last", "xyz", "z"),
        ("ends", "xyz", "xz"),
        ("length", "abcd", "4"),
        ("drop_vowels", "banana", "bnn"),
        ("mask_vowels", "Boat", "B**t"),
        ("rotate_left", "abcd", "bcda"),
        ("rotate_right", "abcd", "dabc"),
        ("swap_pairs", "abcde", "badce"),
        ("copy", "abc", "abc"),
    ],
)
def test_operations(op, given, expected):
    assert OPS[op](given) == expected


def test_every_operation_has_a_spot_check():
    import inspect

    source = inspect.getsource(test_operations)
    missing = [op for op in OPS if f'("{op}"' not in source]
    assert missing == []


def test_examples_are_deterministic_and_distinct():
    task = get_task("reverse@lower")
    a = task.examples(200, seed=3)
    assert a == task.examples(200, seed=3)
    assert a != task.examples(200, seed=4)
    assert len({ex.input for ex in a}) == 200
    assert all(ex.output == ex.input[::-1] for ex in a)
    assert all(set(ex.input) <= set(synthetic.LOWER) and 3 <= len(ex.input) <= 7 for ex in a)


def test_prefixed_format_names_the_operation():
    [ex] = get_task("upper@lower").examples(1, seed=0, prefixed=True, suffix="=")
    assert ex.input.startswith("up:") and ex.input.endswith("=")
    assert ex.output == ex.input.removeprefix("up:").removesuffix("=").upper()


def test_chained_heldout_task_applies_operations_in_order():
    task = get_task("shift1_then_double@lower")
    assert task.apply("az") == "bbaa"
    assert task.domain == "lower"


def test_heldout_tasks_were_never_trained():
    trained = {(t.ops, t.domain) for t in synthetic.TRAIN_TASKS}
    assert len(synthetic.TRAIN_TASKS) >= 16
    assert synthetic.HELDOUT_TASKS
    assert all((t.ops, t.domain) not in trained for t in synthetic.HELDOUT_TASKS)
    # ... yet each needs a skill (an operation) that some training task has.
    trained_ops = {op for ops, _ in trained for op in ops}
    assert all(set(t.ops) <= trained_ops for t in synthetic.HELDOUT_TASKS)


def test_domains_are_disjoint_where_the_merge_suite_needs_it():
    assert not set(synthetic.DOMAINS["upper"]) & set(synthetic.DOMAINS["digits"])
    assert not set(synthetic.DOMAINS["lower"]) & set(synthetic.DOMAINS["upper"])


def test_base_mixture_is_deterministic_and_mixes_formats():
    pairs = synthetic.base_mixture(500, seed=1)
    assert pairs == synthetic.base_mixture(500, seed=1)
    prefixed = [ex for ex in pairs if ":" in ex.input]
    raw = [ex for ex in pairs if ":" not in ex.input]
    assert raw and all(ex.input == ex.output for ex in raw)
    assert len(prefixed) > len(raw)
    ops = {tag: op for op, tag in synthetic.OP_TAGS.items()}
    for ex in prefixed:
        tag, s = ex.input.split(":", 1)
        assert OPS[ops[tag]](s) == ex.output


def test_operation_tags_are_distinct_and_of_equal_length():
    assert set(synthetic.OP_TAGS) == set(OPS)
    assert len(set(synthetic.OP_TAGS.values())) == len(OPS)
    assert {len(tag) for tag in synthetic.OP_TAGS.values()} == {2}


def test_unknown_task_has_a_clear_error():
    with pytest.raises(KeyError, match="unknown synthetic task 'nope'"):
        get_task("nope")


def test_merge_training_examples_mix_own_task_and_neutral_copies():
    from composer.engine.training import merge_training_examples

    task = synthetic.MERGE_TASKS[0]
    exs = merge_training_examples(task, 300, seed=0, suffix="")
    assert exs == merge_training_examples(task, 300, seed=0, suffix="")
    own_chars = set(synthetic.DOMAINS[task.domain])
    own = [ex for ex in exs if set(ex.input) <= own_chars]
    neutral = [ex for ex in exs if not set(ex.input) & own_chars]
    assert len(own) == len(neutral) == 150
    assert all(ex.output == task.apply(ex.input) for ex in own)
    assert all(ex.output == ex.input for ex in neutral)
    domains = {t.domain for t in synthetic.MERGE_TASKS}
    assert len(domains) == len(synthetic.MERGE_TASKS)
