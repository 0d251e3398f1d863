"""Demo content for a new install: tiny base models and adapters built offline.

`demo_adapters(base_dirs)` is the one source of demo adapters: it yields
(name, adapter_dir, metadata). It builds random ones with composer.engine.toy today;
trained adapters can replace it without touching the seeding command.
"""

import json
from collections.abc import Iterator
from pathlib import Path

from composer.engine.toy import build_tiny_llama, build_tiny_t5, make_random_adapter

# Bump to rebuild cached demo files after changing what is built.
DEMO_VERSION = "2"
DEMO_BASE_MODELS = {
    "lorahub/tiny-t5": build_tiny_t5,
    "lorahub/tiny-llama": build_tiny_llama,
}


def demo_base_models(root: Path) -> dict[str, Path]:
    """{identifier: directory} of the tiny base models, built once under `root`."""
    dirs = {}
    for identifier, build in DEMO_BASE_MODELS.items():
        out = root / DEMO_VERSION / "base" / identifier.replace("/", "--")
        if not (out / "config.json").exists():
            build(out)
        dirs[identifier] = out
    return dirs


def architecture(base_dir: Path) -> str:
    config = json.loads((base_dir / "config.json").read_text())
    return ", ".join(config.get("architectures") or [config.get("model_type", "")])


ADAPTERS = [
    # name, base model, r, alpha, targets, seed, task, license, tags, summary
    ("news-summarizer", "lorahub/tiny-t5", 8, 16, ("q", "v"), 1, "summarization", "apache-2.0",
     ["summarization", "news", "english"], "Summarises short news paragraphs into one line."),
    ("sentiment-flip", "lorahub/tiny-t5", 4, 8, ("q", "v"), 2, "text2text-generation", "mit",
     ["style-transfer", "sentiment"], "Rewrites a sentence with the opposite sentiment."),
    ("arithmetic-tutor", "lorahub/tiny-t5", 16, 32, ("q", "k", "v", "o"), 3,
     "question-answering", "cc-by-4.0", ["math", "reasoning"],
     "Answers two-digit addition and subtraction questions, showing the steps."),
    ("en-fr-glossary", "lorahub/tiny-t5", 2, 4, ("q", "v"), 4, "translation", "cc-by-sa-4.0",
     ["translation", "french"], "Translates technical glossary terms from English to French."),
    ("topic-classifier", "lorahub/tiny-t5", 8, 8, ("q", "v", "wi", "wo"), 5,
     "text-classification", "apache-2.0", ["classification", "news"],
     "Labels a headline as sports, politics, science or business."),
    ("story-continuation", "lorahub/tiny-llama", 8, 16, ("q_proj", "v_proj"), 6,
     "text-generation", "mit", ["creative-writing", "english"],
     "Continues a short story in the same voice."),
    ("sql-helper", "lorahub/tiny-llama", 4, 16, ("q_proj", "k_proj", "v_proj", "o_proj"), 7,
     "text-generation", "apache-2.0", ["code", "sql"],
     "Turns a question about a table into a SQL query."),
]  # fmt: skip


def model_card(name: str, base: str, summary: str, r: int, alpha: int, targets, task: str) -> str:
    return f"""# {name}

{summary}

A LoRA adapter (r={r}, alpha={alpha}) for `{base}` on `{", ".join(targets)}`.

## Intended use

Try the catalog: search, filters, downloads, and composing adapters into new ones.

## Training

Demo adapter: random weights built offline, for trying the site. Task: *{task}*.
"""


def demo_adapters(base_dirs: dict[str, Path], root: Path) -> Iterator[tuple[str, Path, dict]]:
    """Yield (name, adapter_dir, metadata) for each demo adapter, building missing ones."""
    for name, base, r, alpha, targets, seed, task, license, tags, summary in ADAPTERS:
        out = root / DEMO_VERSION / "adapters" / name
        if not (out / "adapter_model.safetensors").exists():
            make_random_adapter(
                base_dirs[base], out, r=r, alpha=alpha, target_modules=targets, seed=seed,
                base_model_name=base,
            )  # fmt: skip
            (out / "README.md").write_text(model_card(name, base, summary, r, alpha, targets, task))
        yield name, out, {"task": task, "license": license, "tags": tags}
