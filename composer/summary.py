"""A job in words and numbers for its page and the list: its score, its parameters."""

from composer.models import Job

NAME_MAX = Job._meta.get_field("name").max_length


# The words of merge methods' names written as their papers write them.
METHOD_WORDS = {"knots": "KnOTS", "ties": "TIES", "dare": "DARE", "svd": "SVD"}


def method_label(method: str) -> str:
    """ "knots_dare_ties" -> "KnOTS-DARE-TIES", "task_arithmetic" -> "task-arithmetic"."""
    return "-".join(METHOD_WORDS.get(word, word) for word in method.split("_"))


def _named(verb: str, names: list[str]) -> str:
    """ "composition of a + b + c + 3 more", cut to a job name's length."""
    shown = " + ".join(names[:3]) + (f" + {len(names) - 3} more" if len(names) > 3 else "")
    name = f"{verb} of {shown}"
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"


def job_default_name(kind: str, versions, parameters: dict) -> str:
    """A job named by the user or the task is named so; otherwise after its method and
    inputs: "TIES merge of reverse + vowels + 3 more"."""
    verb = {Job.Kind.LORAHUB: "composition", Job.Kind.LEGO: "LEGO merge"}.get(kind)
    verb = verb or f"{method_label(parameters.get('method', 'linear'))} merge"
    return _named(verb, [v.adapter.name for v in versions])


def screened_result_name(kept: list[str], candidates: int) -> str:
    """A screened search's result after the adapters that carry weight (the largest first),
    not after every candidate: "t5-a (picked by screening from 24 candidates)" when one
    carries it all, else "composition of t5-a + t5-b"."""
    if len(kept) == 1:
        return f"{kept[0]} (picked by screening from {plural(candidates, 'candidate')})"
    return _named("composition", kept)


def job_score(job: Job) -> dict | None:
    """The result's held-out exact match (with the base model's beside it) when the job
    evaluated one (a merge: on its example sets), else the best loss the search reached."""
    result = job.result or {}
    composed = (result.get("evaluation") or {}).get("composed")
    if composed:
        base = result["evaluation"].get("base") or {}
        return {
            "name": "exact match",
            "value": composed["exact_match"],
            "base": base.get("exact_match"),
            "n": composed.get("n"),
            "on": "held-out example",
        }
    sets = (result.get("merge_evaluation") or {}).get("sets")
    if sets:  # a merge scored on example sets: the merged adapter over all of them
        n = sum(s["n"] for s in sets) or 1
        return {
            "name": "exact match",
            "value": sum(s["merged"]["exact_match"] * s["n"] for s in sets) / n,
            "base": sum(s["base"]["exact_match"] * s["n"] for s in sets) / n,
            "n": n,
            "on": "example",
        }
    if job.best_loss is not None:
        return {"name": "best loss", "value": job.best_loss, "base": None, "n": None}
    return None


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _on_off(value) -> str:
    return "on" if value else "off"


UNITS = {
    "svd": "each input's singular directions",
    "raw": "the stored rows of A and columns of B",
}


def parameters_in_words(job: Job) -> list[str]:
    """The job's parameters as short sentences, in the form's terms."""
    p = dict(job.parameters)
    words = []
    if job.kind == Job.Kind.LORAHUB:
        if "budget" in p:
            words.append(
                f"{p.pop('budget')} search steps with the {p.pop('optimizer', 'NGOpt')} "
                f"optimiser, seed {p.pop('seed', 0)}"
            )
        mode, k = p.pop("mode", None), p.pop("top_k", None)
        if mode == "screen":
            mixed = f"up to the {k} best" if k else "the best"
            words.append(f"each candidate screened alone, then {mixed} mixed")
        elif mode == "reference":
            words.append("the LoraHub paper's search, from all weights at 0")
        if "separator" in p:
            words.append(f"“{p.pop('separator')}” between each input and its output")
        words.append(plural(len(job.examples), "few-shot example"))
        if job.heldout:
            words.append(plural(len(job.heldout), "held-out example"))
    elif job.kind == Job.Kind.LEGO:
        k = p.pop("k", None)
        words.append(f"merged rank {k}" if k else "merged rank: the largest input rank")
        units = p.pop("units", "svd")
        words.append(f"units clustered: {UNITS.get(units, units)}")
        words.append(f"parameter reweighting {_on_off(p.pop('param_reweight', True))}")
        words.append(f"output reweighting {_on_off(p.pop('output_reweight', True))}")
    elif job.kind == Job.Kind.MERGE:
        words.append(f"method {method_label(p.pop('method', 'linear'))}")
        if "density" in p:
            words.append(f"density {p.pop('density'):g} (fraction of values kept)")
        if "rank" in p:
            words.append(f"result rank {p.pop('rank')}")
        if "scaling_coef" in p:
            words.append(f"scaling coefficient λ {p.pop('scaling_coef'):g}")
        if "disjoint" in p:
            words.append(f"{p.pop('disjoint')} of the values that agree in sign")
    for key, value in sorted(p.items()):  # anything newer than this list
        if isinstance(value, bool):
            value = _on_off(value)
        words.append(f"{key.replace('_', ' ')} {value}")
    return words
