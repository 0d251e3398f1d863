import json

import pytest
import torch
from peft import PeftModel

from composer.engine.adapters import load_adapter, save_adapter, sha256_file
from composer.engine.base_models import load_base_model
from composer.engine.evaluate import generate
from composer.engine.examples import Example, encode_examples
from composer.engine.lego import LegoParams
from composer.engine.lorahub import Cancelled, LoraHubParams
from composer.engine.run import OutputExists, run_evaluate, run_lego, run_lorahub, run_merge
from tests.engine.conftest import wrappers_left


class Cache:
    def __init__(self, kit):
        self.kit, self.calls = kit, 0

    def get(self, base_dir, device):
        self.calls += 1
        return self.kit.model, self.kit.tok


def peft_loss(base, adapter_dir, tok, examples):
    model = PeftModel.from_pretrained(load_base_model(base), adapter_dir).eval()
    causal = not model.config.is_encoder_decoder
    with torch.no_grad():
        return float(model(**encode_examples(tok, examples, causal=causal)).loss)


def test_run_lorahub_writes_a_peft_adapter_and_result(kit, examples, tmp_path):
    cache = Cache(kit)
    out = tmp_path / "out"
    result = run_lorahub(
        kit.base,
        kit.adapters,
        examples,
        out,
        LoraHubParams(mode="reference", budget=6, l1=0.0),
        heldout=examples[:2],
        model_cache=cache,
    )
    assert cache.calls == 1 and wrappers_left(kit.model) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "result.json",
    ]
    assert not list(tmp_path.glob(".*tmp*"))
    stored = json.loads((out / "result.json").read_text())
    assert stored == json.loads(json.dumps(result))
    assert result["method"] == "lorahub" and len(result["history"]) == 6
    assert [i["sha256"] for i in result["inputs"]] == [
        sha256_file(d / "adapter_model.safetensors") for d in kit.adapters
    ]
    assert result["output"]["sha256"] == sha256_file(out / "adapter_model.safetensors")
    assert {"load_model_s", "search_s", "total_s"} <= set(result["timings"])
    ev = result["evaluation"]
    assert ev["base"]["n"] == ev["composed"]["n"] == 2
    # the written adapter, loaded by peft, reproduces the composed loss the search reported
    loss = peft_loss(kit.base, out, kit.tok, examples)
    assert result["ce"] == pytest.approx(loss / len(examples), rel=1e-5)
    assert ev["composed"]["loss"] == pytest.approx(
        peft_loss(kit.base, out, kit.tok, examples[:2]), rel=1e-5
    )
    assert load_adapter(out).r == 4 and load_adapter(out).alpha == 8


def test_run_lorahub_screened_records_the_table_and_the_search(t5, examples, tmp_path):
    """The default mode reads the adapters while screening; result.json holds the screening
    table, the K selected and the search path, and the adapter written is the result's."""
    out = tmp_path / "screened"
    result = run_lorahub(
        t5.base, t5.adapters, examples, out, LoraHubParams(budget=9, top_k=2), model_cache=Cache(t5)
    )
    assert result["params"]["mode"] == "screen"
    assert [r["name"] for r in result["screening"]] == [d.name for d in t5.adapters]
    assert [i["sha256"] for i in result["inputs"]] == [r["sha256"] for r in result["screening"]]
    assert len(result["selected"]) == 2 and len(result["history"]) == 6
    assert result["choice"]["search_budget"] == 6 and len(result["weights"]) == 3
    assert {"screen_s", "search_s"} <= set(result["timings"])
    loss = peft_loss(t5.base, out, t5.tok, examples)
    assert result["ce"] == pytest.approx(loss / len(examples), rel=1e-5)


def test_run_lorahub_compares_the_result_with_the_obvious(t5, examples, tmp_path):
    """On the held-out examples (or, without them, on the few-shot ones, said so): the base
    model, the uniform average of all candidates, the best single candidate, the result."""
    from composer.engine.evaluate import evaluate_model
    from composer.engine.run import evaluate_composed

    dirs = [*t5.adapters, t5.adapter("r2_alpha2", r=2, alpha=2, seed=8)]  # ranks 4 and 2
    heldout = [Example("moon", "noom"), Example("star", "rats")]
    for mode, held in (("screen", heldout), ("reference", None)):
        result = run_lorahub(
            t5.base,
            dirs,
            examples,
            tmp_path / mode,
            LoraHubParams(mode=mode, budget=6),
            heldout=held,
            model_cache=Cache(t5),
            names=[f"catalog-{d.name}" for d in dirs],
        )
        on = held or examples
        comparison = result["comparison"]
        assert comparison["on"] == ("heldout" if held else "examples")
        assert comparison["n"] == len(on)
        rows = {r["key"]: r for r in comparison["rows"]}
        assert list(rows) == ["base", "uniform", "best_single", "result"]
        assert rows["base"]["loss"] == evaluate_model(t5.model, t5.tok, on)["loss"]
        uniform = evaluate_composed(t5.model, t5.tok, on, t5.loaded(dirs), [0.25] * 4)
        assert rows["uniform"]["loss"] == pytest.approx(uniform["loss"], rel=1e-5)
        assert rows["result"]["loss"] == pytest.approx(
            peft_loss(t5.base, tmp_path / mode, t5.tok, on), rel=1e-5
        )
        screened = run_lorahub(
            t5.base,
            dirs,
            examples,
            tmp_path / f"{mode}-pick",
            LoraHubParams(budget=4),
            model_cache=Cache(t5),
        )
        winner = screened["screening"][screened["selected"][0]]["name"]
        assert rows["best_single"]["name"].endswith(f": catalog-{winner}")
        assert (result["evaluation"] is None) == (held is None)


def test_mixed_ranks_and_scales_compose_into_a_loadable_adapter(t5, examples, tmp_path):
    dirs = [t5.adapters[0], t5.adapter("r2_alpha2", r=2, alpha=2, seed=8)]  # scales 2 and 1
    out = tmp_path / "mixed"
    result = run_lorahub(
        t5.base, dirs, examples, out, LoraHubParams(budget=4), model_cache=Cache(t5)
    )
    assert result["output"]["r"] == 4 and result["output"]["alpha"] == 4  # scale 1
    composed_ce = result["ce"] * len(examples)
    assert peft_loss(t5.base, out, t5.tok, examples) == pytest.approx(composed_ce, rel=1e-5)


def test_outputs_are_never_overwritten_or_left_half_written(t5, examples, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExists, match="already exists and is not empty"):
        run_merge("cat", t5.adapters, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    seen = []
    with pytest.raises(Cancelled):
        run_lorahub(
            t5.base,
            t5.adapters,
            examples,
            tmp_path / "cancelled",
            LoraHubParams(budget=10),
            on_step=seen.append,
            should_stop=lambda: len(seen) >= 2,
            model_cache=Cache(t5),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_run_lego_and_merge_outputs_load_with_peft(t5, tmp_path):
    lego = run_lego(t5.adapters, tmp_path / "lego", LegoParams(k=6))
    assert lego["params"]["k"] == 6 and lego["output"]["r"] == 6
    cfg = json.loads((tmp_path / "lego" / "adapter_config.json").read_text())
    assert cfg["r"] == cfg["lora_alpha"] == 6 and cfg["base_model_name_or_path"] == str(t5.base)
    merged = run_merge("task_arithmetic", t5.adapters, tmp_path / "ta", weights=[1, -1, 0.5])
    assert merged["weights"] == [1, -1, 0.5] and merged["output"]["r"] == 12
    for d in ("lego", "ta"):
        model = PeftModel.from_pretrained(load_base_model(t5.base), tmp_path / d)
        assert model.peft_config["default"].r in (6, 12)


def test_outputs_keep_the_inputs_dtype(t5, tmp_path):
    dirs = []
    for i, d in enumerate(t5.adapters[:2]):
        a = load_adapter(d)
        dirs.append(tmp_path / f"bf16_{i}")
        save_adapter(dirs[-1], a.modules, base_model=a.base_model, dtype=torch.bfloat16)
    result = run_merge("task_arithmetic", dirs, tmp_path / "out")
    assert [i["dtype"] for i in result["inputs"]] == ["bfloat16", "bfloat16"]
    assert result["output"]["dtype"] == "bfloat16"
    assert load_adapter(tmp_path / "out").stored_dtype == "bfloat16"
    mixed = run_merge("cat", [t5.adapters[0], dirs[1]], tmp_path / "mixed")
    assert mixed["output"]["dtype"] == "float32"


def test_run_evaluate_base_and_adapter(llama, examples):
    base = run_evaluate(llama.base, examples, model_cache=Cache(llama))
    with_adapter = run_evaluate(llama.base, examples, llama.adapters[0], model_cache=Cache(llama))
    assert base["n"] == 5 and 0.0 <= base["exact_match"] <= 1.0
    assert base["loss"] != with_adapter["loss"]
    assert with_adapter["loss"] == pytest.approx(
        peft_loss(llama.base, llama.adapters[0], llama.tok, examples), rel=1e-5
    )
    assert with_adapter["adapter"]["sha256"] == sha256_file(
        llama.adapters[0] / "adapter_model.safetensors"
    )
    assert wrappers_left(llama.model) == 0


def test_exact_match_by_greedy_generation(kit):
    inputs = ["ab", "hello there", "x"]
    batched = generate(kit.model, kit.tok, inputs, max_new_tokens=6, batch_size=3)
    single = [generate(kit.model, kit.tok, [s], max_new_tokens=6)[0] for s in inputs]
    assert batched == single  # padding does not change what is generated
    right = [Example(i, p) for i, p in zip(inputs, batched, strict=False)]
    wrong = [Example(i, p + "!") for i, p in zip(inputs, batched, strict=False)]
    cache = Cache(kit)
    assert run_evaluate(kit.base, right, model_cache=cache, max_new_tokens=6)["exact_match"] == 1
    assert run_evaluate(kit.base, wrong, model_cache=cache, max_new_tokens=6)["exact_match"] == 0


def test_a_generated_nul_character_comes_back_as_a_symbol(kit):
    """An adapter can make a byte-level model emit byte 0; PostgreSQL refuses NUL in text
    and JSON, so a try or an evaluation that stored it failed."""
    nul = kit.tok.convert_tokens_to_ids("\x00")
    bias = torch.zeros(len(kit.tok))
    bias[nul] = 1e4  # every step's most likely token is byte 0, as such an adapter makes it
    hook = kit.model.get_output_embeddings().register_forward_hook(lambda m, i, out: out + bias)
    try:
        (text,) = generate(kit.model, kit.tok, ["abc"], max_new_tokens=3)
    finally:
        hook.remove()
    assert text == "\N{SYMBOL FOR NULL}" * 3
