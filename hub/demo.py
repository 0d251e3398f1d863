"""Demo content for a new install: the tiny trained suite of composer.engine.training.

`ensure_suite("llama", quick=True)` trains (once per machine, cached under ~/.cache/lorahub
or `LORAHUB_CACHE`) a tiny Llama on every synthetic string operation and one LoRA per
training task; no adapter saw the held-out tasks, so composing adapters has something real
to find. The Llama, not the T5: it learns the operations far sooner (after 1,500 steps
exact match 0.57 on prefixed inputs against the T5's 0.20; after 3,000 the Llama's is 1.0),
so within the quick build the adapters do their tasks and a composition can transfer them.
`demo_base_model(suite)` and `demo_adapters(suite)` describe them for the catalog, and
`fewshot_sets(suite)` gives ready-to-paste examples of a few held-out tasks.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from django.urls import reverse

from composer.engine import synthetic
from composer.engine.training import Suite, ensure_suite

DEMO_KIND = "llama"
# The quick suite builds in about 3.5 minutes on two quiet cores; the full one takes longer.
DEMO_QUICK = True
FEWSHOT_SHOTS, FEWSHOT_HELDOUT = 5, 10
# Held-out tasks offered as ready examples, with the trained adapters that hold the skill:
# those that LoraHub (the job's defaults) picks from these very examples (exact match on
# 100 other inputs: 1.00, 1.00, 1.00, 0.94; base model and uniform average 0.03 at most).
FEATURED = {
    "upper@mixed": ["upper@lower", "swapcase@mixed"],
    "first@digits": ["first@lower"],
    "rotate_right@digits": ["rotate_right@lower"],
    "length@digits": ["length@lower"],
}
ARCHITECTURE_TEXT = {
    "t5": "T5 (encoder-decoder",
    "llama": "Llama (decoder-only",
}
TASK = {"t5": "text2text-generation", "llama": "text-generation"}

OP_TEXT = {
    "copy": "copies the string",
    "reverse": "reverses the string",
    "upper": "upper-cases every letter",
    "lower": "lower-cases every letter",
    "swapcase": "swaps the case of every letter",
    "shift1": "shifts every letter and digit one place on (a→b, z→a, 9→0)",
    "unshift1": "shifts every letter and digit one place back (b→a, a→z, 0→9)",
    "shift3": "shifts every letter and digit three places on (a→d, x→a)",
    "double": "writes every character twice",
    "repeat": "writes the string twice",
    "mirror": "appends the string reversed",
    "first": "keeps the first character",
    "last": "keeps the last character",
    "ends": "keeps the first and the last character",
    "length": "counts the characters",
    "drop_vowels": "drops the vowels",
    "mask_vowels": "replaces every vowel with *",
    "rotate_left": "moves the first character to the end",
    "rotate_right": "moves the last character to the front",
    "swap_pairs": "swaps each pair of neighbouring characters",
}
DOMAIN_TEXT = {
    "lower": "lower-case letters",
    "upper": "upper-case letters",
    "digits": "digits",
    "mixed": "lower-case letters and digits",
}


def demo_suite(progress=None) -> Suite:
    """The demo's trained suite, built on first use (minutes) and then read from the cache;
    `progress` receives a line now and then while it trains."""
    return ensure_suite(DEMO_KIND, quick=DEMO_QUICK, progress=progress)


def base_model_id(suite: Suite) -> str:
    """The identifier the suite's adapters name in adapter_config.json."""
    config = json.loads((next(iter(suite.adapters.values())) / "adapter_config.json").read_text())
    return config["base_model_name_or_path"]


def suite_spec(suite: Suite) -> dict:
    """The sizes and step counts the suite was built with (from its manifest)."""
    return json.loads((suite.root / "manifest.json").read_text())["spec"]


def architecture(base_dir: Path) -> str:
    config = json.loads((base_dir / "config.json").read_text())
    return ", ".join(config.get("architectures") or [config.get("model_type", "")])


def adapter_name(task: str) -> str:
    """'drop_vowels@lower' -> 'drop-vowels-lower'."""
    return task.replace("@", "-").replace("_then_", "-then-").replace("_", "-")


def describe(task: str) -> str:
    """'reverse_then_upper@lower' -> 'reverses the string, then upper-cases every letter, ...'"""
    t = synthetic.get_task(task)
    ops = ", then ".join(OP_TEXT[op] for op in t.ops)
    return f"{ops}, on strings of {t.min_len}-{t.max_len} {DOMAIN_TEXT[t.domain]}"


def _examples_table(examples) -> str:
    rows = "\n".join(f"| `{ex.input}` | `{ex.output}` |" for ex in examples)
    return f"| input | output |\n| --- | --- |\n{rows}"


def _input_end(suite: Suite) -> str:
    """How an input ends: a decoder-only model needs a mark where the input stops."""
    suffix = suite.info["suffix"]
    return f" followed by `{suffix}` (where the input ends)" if suffix else ""


def adapter_card(suite: Suite, task: str) -> str:
    spec, info = suite_spec(suite), suite.info["adapters"][task]
    base_url = reverse("hub:base_model_detail", args=[base_model_id(suite)])
    return f"""# {adapter_name(task)}

A LoRA for `{base_model_id(suite)}` that {describe(task)}. The input is the raw
string{_input_end(suite)}, the output the result:

{_examples_table(suite.examples(task, 4, seed=1))}

## Training

Trained on {info.get("examples", "2000")} synthetic examples of the task `{task}`
({info["steps"]} steps, batch {spec["lora_batch"]}, final loss {info["final_loss"]}),
r={spec["lora_r"]}, lora_alpha={spec["lora_alpha"]} on `{", ".join(spec["lora_targets"])}`.
Without an adapter the base model copies a raw input, so this adapter switches it to one
operation.

## Intended use

One of {len(suite.train_tasks)} demo adapters, each trained on one string operation. Compose
them with LoraHub for a task none of them saw: [the base model's page]({base_url}) has ready
few-shot examples of such held-out tasks.
"""


@dataclass(frozen=True)
class FewShotSet:
    task: str
    description: str
    shots: list  # of Example: what LoraHub composes with
    heldout: list  # of Example: other inputs, to evaluate the result
    adapters: list[str]  # demo adapters that hold the skill


def fewshot_sets(suite: Suite) -> list[FewShotSet]:
    """Ready examples of the featured held-out tasks (shots and held-out inputs distinct)."""
    sets = []
    for task, skills in FEATURED.items():
        pool = suite.examples(task, FEWSHOT_SHOTS + FEWSHOT_HELDOUT, seed=7)
        sets.append(
            FewShotSet(
                task=task,
                description=describe(task),
                shots=pool[:FEWSHOT_SHOTS],
                heldout=pool[FEWSHOT_SHOTS:],
                adapters=[adapter_name(s) for s in skills],
            )
        )
    return sets


def jsonl(examples) -> str:
    return "".join(json.dumps({"input": ex.input, "output": ex.output}) + "\n" for ex in examples)


def base_model_card(suite: Suite, compose_url: str) -> str:
    """The base model's page: what it is, and held-out tasks ready to compose for.

    `compose_url` opens the LoraHub form with every demo adapter ticked; each task's link
    also fills in its examples."""
    spec, info = suite_spec(suite), suite.info["base"]
    parts = [
        f"""A tiny {ARCHITECTURE_TEXT[suite.kind]}, {spec["d_model"]} wide,
{spec["num_layers"]} layers, byte-level tokenizer) trained offline on synthetic string
operations ({info["steps"]} steps, final loss {info["final_loss"]}). Given
`<tag>:<string>{suite.info["suffix"]}` it applies the tagged operation; given a raw
`<string>{suite.info["suffix"]}` it copies the string. Each demo adapter switches a raw
input to one operation.

## Try a LoraHub composition

The tasks below are *held out*: no adapter was trained on them. Log in,
[open the LoraHub form with all {len(suite.train_tasks)} demo adapters]({compose_url}),
paste a task's few-shot examples and, optionally, its held-out examples: when the job ends,
its page compares the base model and the result on them (loss, exact match). The weights
show which adapters the composition found useful; the ones with the skill are named below.
A run of 40 steps takes well under a minute on a CPU."""
    ]
    for s in fewshot_sets(suite):
        named = ", ".join(f"`{a}`" for a in s.adapters)
        prefilled = urlencode(
            {"name": s.task, "examples": jsonl(s.shots), "heldout": jsonl(s.heldout)}
        )
        parts.append(
            f"""### `{s.task}`: {s.description}

Adapters with the skill: {named}. [Compose for this task]({compose_url}&{prefilled}): the
form with every demo adapter ticked and the examples below filled in.

Few-shot examples:

```
{jsonl(s.shots)}```

Held-out examples:

```
{jsonl(s.heldout)}```"""
        )
    return "\n\n".join(parts) + "\n"


def demo_adapters(suite: Suite) -> Iterator[tuple[str, Path, dict]]:
    """Yield (name, adapter_dir, metadata) for each trained task adapter of the suite."""
    for task in suite.train_tasks:
        t = synthetic.get_task(task)
        tags = ["demo", "synthetic", "string-ops", *t.ops, t.domain]
        yield (
            adapter_name(task),
            suite.adapters[task],
            {
                "task": TASK[suite.kind],
                "license": "apache-2.0",
                "tags": list(dict.fromkeys(tag.replace("_", "-") for tag in tags)),
                "model_card": adapter_card(suite, task),
            },
        )


def write_fewshot_files(suite: Suite, root: Path) -> Path:
    """The featured few-shot and held-out sets as JSON lines files (for the upload fields)."""
    out = root / "fewshot"
    out.mkdir(parents=True, exist_ok=True)
    for s in fewshot_sets(suite):
        (out / f"{adapter_name(s.task)}.jsonl").write_text(jsonl(s.shots))
        (out / f"{adapter_name(s.task)}.heldout.jsonl").write_text(jsonl(s.heldout))
    return out
