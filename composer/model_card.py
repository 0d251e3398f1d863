"""The generated model card (README.md) of a job's result.

Its YAML front matter carries the lineage as the Hugging Face Hub reads it: the parents that
carry weight as `base_model` (sorted by weight, at most 20) with `base_model_relation: merge`,
and the license chosen at publishing; the catalog reads the same block back
(hub.services.card_metadata)."""

import json

from django.urls import reverse

from composer.summary import (
    job_default_name,
    parameters_in_words,
    plural,
    screened_result_name,
)
from hub.services.card_metadata import MAX_ITEMS

SHOWN_EXAMPLES = 5


def parent_rows(job, labels: list[str]) -> list[dict]:
    """The inputs with their weight and catalog link, the largest in magnitude first."""
    result = job.result or {}
    inputs = list(job.inputs.select_related("version__adapter__owner"))
    weights = result.get("weights") or job.best_weights or [i.weight for i in inputs]
    rows = []
    for n, label in enumerate(labels):
        w = weights[n] if n < len(weights) and weights[n] is not None else None
        version = inputs[n].version if n < len(inputs) else None
        adapter = version.adapter if version else None
        rows.append(
            {
                "label": label,
                "name": adapter.name if adapter else label,
                "weight": w,
                "repo_id": adapter.full_name if adapter else None,
                "url": reverse(
                    "hub:adapter_revision",
                    args=[adapter.owner.get_username(), adapter.name, f"v{version.number}"],
                )
                if adapter
                else None,
            }
        )
    return sorted(rows, key=lambda r: -abs(r["weight"] or 0.0))


def carries_weight(parent: dict) -> bool:
    """A parent with a weight other than 0 (None: the merge's own 1/N)."""
    return parent["weight"] != 0


def front_matter(job, parents: list[dict], license: str) -> list[str]:
    data = {"library_name": "peft"}
    if license:
        data["license"] = license
    # JSON is YAML: values are quoted and escaped whatever the names hold.
    # The parents that carry weight (a screened search gives the others 0), the largest
    # first, as many as a card's list may hold.
    weighted = [p["repo_id"] for p in parents if p["repo_id"] and carries_weight(p)]
    data["base_model"] = weighted[:MAX_ITEMS]
    data["base_model_relation"] = "merge"
    data["tags"] = list(dict.fromkeys(["lorahub", "composed", job.kind]))  # a LoraHub job: its kind
    return ["---", *(f"{key}: {json.dumps(value)}" for key, value in data.items()), "---", ""]


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'").replace("\n", " ")[:200] + "`"


def model_card(job, labels: list[str], license: str = "", every_input: bool = True) -> str:
    """Markdown describing what the adapter was made from and how. Without `every_input`
    (a published card) the parents table lists those that carry weight and counts the
    others: a screened search over 500 catalog adapters leaves most of them at 0."""
    result = job.result or {}
    parents = parent_rows(job, labels)
    versions = [i.version for i in job.inputs.select_related("version__adapter")]
    made = job_default_name(job.kind, [v for v in versions if v], job.parameters)
    title = job.name or f"{job.get_kind_display()} of {len(labels)} adapters"
    if job.name in ("", made) and job.parameters.get("mode") == "screen":
        kept = [p["name"] for p in parents if carries_weight(p)]
        title = screened_result_name(kept, len(parents)) if kept else title
    lines = [*front_matter(job, parents, license), f"# {title}", ""]
    lines += [f"Made on LoRA Hub by job #{job.pk} ({job.get_kind_display()}).", ""]
    if job.name and job.name != made:
        lines += [f"Task: **{job.name}**", ""]  # named by the user or the task's link
    if job.base_model_id:
        lines += [f"Base model: `{job.base_model.identifier}`", ""]
    if license:
        lines += [f"License: `{license}`", ""]
    lines += ["## Parents", "", "| adapter | weight |", "| --- | --- |"]
    listed = parents if every_input else [p for p in parents if carries_weight(p)]
    for p in listed:
        name = f"[{p['label']}]({p['url']})" if p["url"] else f"{p['label']} (removed)"
        weight = "" if p["weight"] is None else f"{p['weight']:.4f}"
        lines.append(f"| {name} | {weight} |")
    if len(listed) < len(parents):
        lines += ["", f"{plural(len(parents) - len(listed), 'other input')} had weight 0."]
    if job.examples:
        shown = job.examples[:SHOWN_EXAMPLES]
        lines += ["", "## Examples", ""]
        count = plural(len(job.examples), "few-shot example")
        if len(shown) < len(job.examples):
            count += f" ({len(shown)} shown)"
        heldout = f"; the result is evaluated on {plural(len(job.heldout), 'held-out example')}"
        heldout = heldout if job.heldout else ""
        lines.append(f"The weights were searched on {count}{heldout}.")
        lines += ["", "| input | output |", "| --- | --- |"]
        lines += [f"| {_cell(e['input'])} | {_cell(e['output'])} |" for e in shown]
    lines += ["", "## Parameters", ""]
    lines += [f"- {words}" for words in parameters_in_words(job)]
    evaluation = result.get("evaluation")
    if result.get("comparison"):
        lines += comparison_section(result["comparison"])
    elif evaluation:
        lines += ["", "## Evaluation on held-out examples", "", "| model | loss | exact match |"]
        lines.append("| --- | --- | --- |")
        for key, name in (("base", "base model"), ("composed", "this adapter")):
            if key in evaluation:
                row = evaluation[key]
                lines.append(f"| {name} | {row['loss']:.4f} | {row['exact_match']:.3f} |")
    lines += ["", "Load it with `PeftModel.from_pretrained(base_model, this_directory)`.", ""]
    return "\n".join(lines)


def comparison_section(comparison: dict) -> list[str]:
    """Markdown lines: the result beside the base model, the uniform average and the best
    single candidate (a LoraHub result's `comparison`)."""
    n = comparison["n"]
    if comparison["on"] == "heldout":
        title, note = f"## Evaluation on {n} held-out examples", []
    else:
        title = f"## Evaluation on the {n} few-shot examples"
        note = ["No held-out examples were given: these are the examples the search used.", ""]
    lines = ["", title, "", *note, "| model | exact match | loss |", "| --- | --- | --- |"]
    for row in comparison["rows"]:
        name = row["name"].replace("|", "\\|")
        lines.append(f"| {name} | {row['exact_match']:.3f} | {row['loss']:.4f} |")
    return lines
