import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import PeftModel

from composer.engine.base_models import load_base_model
from composer.engine.cli import main

ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    proc = subprocess.run(
        [sys.executable, "-m", "composer.engine", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def examples_file(tmp_path, examples):
    path = tmp_path / "examples.jsonl"
    path.write_text(
        "".join(json.dumps({"input": e.input, "output": e.output}) + "\n" for e in examples)
    )
    return path


def test_lorahub_end_to_end(t5, examples_file, tmp_path):
    out = tmp_path / "hub"
    code, stdout, stderr = cli(
        "lorahub",
        "--base-model",
        t5.base,
        "--adapters",
        *t5.adapters,
        "--examples",
        examples_file,
        "--out",
        out,
        "--steps",
        3,
        "--seed",
        1,
    )
    assert code == 0, stderr
    assert "step    3/3" in stderr and "Traceback" not in stderr
    result = json.loads(stdout)
    assert result["method"] == "lorahub" and len(result["weights"]) == 3
    assert result["params"]["budget"] == 3 and result["params"]["seed"] == 1
    assert result["params"]["mode"] == "screen" and len(result["screening"]) == 3
    assert json.loads((out / "result.json").read_text())["weights"] == result["weights"]
    PeftModel.from_pretrained(load_base_model(t5.base), out)


def test_lorahub_reference_mode_in_process(t5, examples_file, tmp_path, capsys):
    args = ["lorahub", "--base-model", str(t5.base), "--adapters", *map(str, t5.adapters)]
    args += ["--examples", str(examples_file), "--out", str(tmp_path / "ref"), "--quiet"]
    assert main([*args, "--mode", "reference", "--steps", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["params"]["mode"] == "reference" and "screening" not in result
    assert result["optimizer"] == "NGOpt/Cobyla"


def test_merge_command(t5, tmp_path, capsys):
    """In process (same entry point as `python -m composer.engine`) to save start-up time."""
    weights = ["--weights", "1", "1", "1", "--density", "0.4"]
    out = ["--out", str(tmp_path / "ties")]
    assert (
        main(["merge", "--method", "ties", "--adapters", *map(str, t5.adapters), *weights, *out])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["params"]["density"] == 0.4 and result["weights"] == [1.0, 1.0, 1.0]
    assert (tmp_path / "ties" / "adapter_model.safetensors").is_file()


def test_lego_and_evaluate_commands(t5, examples_file, tmp_path, capsys):
    """The same entry point as `python -m composer.engine`, in process to save start-up time."""
    assert (
        main(
            [
                "lego",
                "--adapters",
                *map(str, t5.adapters),
                "--rank",
                "5",
                "--out",
                str(tmp_path / "lego"),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["output"]["r"] == 5
    args = [
        "evaluate",
        "--base-model",
        str(t5.base),
        "--adapter",
        str(tmp_path / "lego"),
        "--examples",
        str(examples_file),
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 5 and report["adapter"]["path"] == str(tmp_path / "lego")
    assert 0.0 <= report["exact_match"] <= 1.0 and report["loss"] > 0


@pytest.mark.parametrize("case", ["example_too_long", "incompatible"])
def test_bad_input_gives_one_line_and_exit_2(t5, llama, tmp_path, case):
    if case == "example_too_long":  # found after the base model is loaded: no noise before it
        long = tmp_path / "long.jsonl"
        long.write_text(json.dumps({"input": "x" * 1100, "output": "y"}) + "\n")
        args = ["lorahub", "--base-model", t5.base, "--adapters", *t5.adapters]
        args += ["--examples", long, "--out", tmp_path / "o"]
        expected = "example 1 is 1101 tokens long (limit 1024)"
    else:
        args = ["lego", "--adapters", t5.adapters[0], llama.adapters[0], "--out", tmp_path / "o"]
        expected = "different base models"
    code, stdout, stderr = cli(*args)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and stdout == ""
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (
            lambda k, p: ["evaluate", "--base-model", k.base, "--examples", p / "empty.jsonl"],
            "empty",
        ),
        (
            lambda k, p: ["evaluate", "--base-model", p / "none", "--examples", p / "ok.csv"],
            "base model",
        ),
        (
            lambda k, p: ["merge", "--method", "cat", "--adapters", p, "--out", p / "x"],
            "no adapter_config",
        ),
        (
            lambda k, p: [
                "lorahub",
                "--base-model",
                k.base,
                "--adapters",
                *k.adapters,
                "--examples",
                p / "ok.csv",
                "--out",
                p / "x",
                "--optimizer",
                "Nope",
            ],
            "unknown nevergrad optimizer",
        ),
        (
            lambda k, p: [
                "evaluate",
                "--base-model",
                k.base,
                "--examples",
                p / "ok.csv",
                "--device",
                "cuda",
            ],
            "CUDA is not available",
        ),
        (
            lambda k, p: [
                "evaluate",
                "--base-model",
                k.base,
                "--examples",
                p / "ok.csv",
                "--device",
                "gpu7",
            ],
            "unknown device 'gpu7'",
        ),
    ],
)
def test_more_bad_input_in_process(t5, tmp_path, capsys, make_args, expected):
    if expected == "CUDA is not available" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "ok.csv").write_text("a,b\n")
    (tmp_path / "big.csv").write_text("a,b\n" * 5001)
    assert main([str(a) for a in make_args(t5, tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err
