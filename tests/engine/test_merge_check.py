"""Merges scored on examples: the base model, each parent and the merged adapter."""

import json

import pytest

from composer.engine.cli import main
from composer.engine.examples import MAX_CHECK_EXAMPLES, Example
from composer.engine.lego import LegoParams
from composer.engine.run import MergeCheck, run_evaluate, run_lego, run_merge
from tests.engine.test_run import Cache


def scored(kit, examples, adapter_dir=None) -> dict:
    ev = run_evaluate(kit.base, examples, adapter_dir, model_cache=Cache(kit))
    return {"exact_match": ev["exact_match"], "loss": ev["loss"]}


def test_one_set_scores_every_parent_and_the_merge(kit, examples, tmp_path):
    check = MergeCheck(kit.base, [examples], model_cache=Cache(kit))
    out = tmp_path / "ta"
    res = run_merge("task_arithmetic", kit.adapters, out, weights=[1, 1, 1], check=check)
    (row,) = res["merge_evaluation"]["sets"]
    assert row["input"] is None and row["n"] == len(examples)
    assert [p["input"] for p in row["parents"]] == [0, 1, 2]
    # the same figures as evaluating each adapter directory on its own
    assert row["base"] == pytest.approx(scored(kit, examples))
    for p, d in zip(row["parents"], kit.adapters, strict=True):
        assert {k: p[k] for k in ("exact_match", "loss")} == pytest.approx(scored(kit, examples, d))
    assert row["merged"] == pytest.approx(scored(kit, examples, out))
    losses = {row["base"]["loss"], row["merged"]["loss"], *(p["loss"] for p in row["parents"])}
    assert len(losses) == 5  # five different models were run
    recorded = json.loads((out / "result.json").read_text())
    assert recorded["merge_evaluation"] == res["merge_evaluation"]


def test_one_set_per_task_scores_its_own_parent(t5, examples, tmp_path):
    sets = [examples[:2], examples[2:4], examples[4:]]
    check = MergeCheck(t5.base, sets, model_cache=Cache(t5))
    res = run_lego(t5.adapters, tmp_path / "lego", LegoParams(k=4), check=check)
    rows = res["merge_evaluation"]["sets"]
    assert [(r["input"], r["n"], [p["input"] for p in r["parents"]]) for r in rows] == [
        (0, 2, [0]),
        (1, 2, [1]),
        (2, 1, [2]),
    ]
    for r, s, d in zip(rows, sets, t5.adapters, strict=True):
        assert r["parents"][0]["loss"] == pytest.approx(scored(t5, s, d)["loss"])
        assert r["merged"] == pytest.approx(scored(t5, s, tmp_path / "lego"))


@pytest.mark.parametrize(
    "sets, message",
    [
        ("two", "2 example sets for 3 adapters"),
        ("empty", "an example set is empty"),
        ("too many", f"{MAX_CHECK_EXAMPLES + 1} examples to check the merge on"),
    ],
)
def test_bad_example_sets_are_refused_before_any_work(t5, tmp_path, sets, message):
    one = [Example("a", "b")]
    sets = {
        "two": [one, one],
        "empty": [one, [], one],
        "too many": [one * (MAX_CHECK_EXAMPLES - 1), one, one],
    }[sets]
    # a base model that does not exist: the sets are refused before it would be needed
    check = MergeCheck(tmp_path / "no-base", sets)
    with pytest.raises(ValueError, match=message):
        run_merge("cat", t5.adapters, tmp_path / "out", check=check)
    assert not (tmp_path / "out").exists()


def test_merge_command_with_examples(t5, tmp_path, capsys):
    data = tmp_path / "ex.jsonl"
    data.write_text('{"input": "abc", "output": "cba"}\n{"input": "lora", "output": "arol"}\n')
    common = ["--adapters", *map(str, t5.adapters), "--examples", str(data)]
    assert main(["merge", "--method", "cat", *common, "--out", str(tmp_path / "no")]) == 2
    assert "--examples needs --base-model" in capsys.readouterr().err
    args = ["--base-model", str(t5.base), "--out", str(tmp_path / "cat")]
    assert main(["merge", "--method", "cat", *common, *args]) == 0
    (row,) = json.loads(capsys.readouterr().out)["merge_evaluation"]["sets"]
    assert row["n"] == 2 and len(row["parents"]) == 3
