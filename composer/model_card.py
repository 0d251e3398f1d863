"""The generated model card (README.md) of a job's result."""

import json


def model_card(job, labels: list[str]) -> str:
    """Markdown describing what the adapter was made from and how."""
    result = job.result or {}
    weights = result.get("weights") or job.best_weights or [i.weight for i in job.inputs.all()]
    lines = [
        f"# {job.get_kind_display()} of {len(labels)} adapters",
        "",
        f"Made on LoRA Hub by job #{job.pk} ({job.get_kind_display()}).",
        "",
    ]
    if job.base_model_id:
        lines += [f"Base model: `{job.base_model.identifier}`", ""]
    lines += ["## Parents", "", "| adapter | weight |", "| --- | --- |"]
    for i, label in enumerate(labels):
        w = weights[i] if weights and i < len(weights) and weights[i] is not None else None
        lines.append(f"| {label} | {'' if w is None else f'{w:.4f}'} |")
    lines += ["", "## Parameters", "", "```json", json.dumps(job.parameters, indent=2), "```"]
    evaluation = result.get("evaluation")
    if evaluation:
        lines += ["", "## Evaluation on held-out examples", "", "| model | loss | exact match |"]
        lines.append("| --- | --- | --- |")
        for key, name in (("base", "base model"), ("composed", "this adapter")):
            if key in evaluation:
                row = evaluation[key]
                lines.append(f"| {name} | {row['loss']:.4f} | {row['exact_match']:.3f} |")
    lines += ["", "Load it with `PeftModel.from_pretrained(base_model, this_directory)`.", ""]
    return "\n".join(lines)
