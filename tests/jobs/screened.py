"""A finished LoraHub job that screened many catalog adapters, as the worker stores it."""

import random

from composer.models import Job, JobInput
from hub.models import Adapter, AdapterVersion, BaseModel

TASKS = ("quarel_choose_between", "wiki_qa_topic_prediction", "race_high_select_the_best")


def screened_job(owner, publisher, n: int = 500, mix=(0.9, 0.55, 0.2, -0.5, 0.15)) -> Job:
    """`owner`'s succeeded job over `n` adapters of `publisher` (long catalog names, like
    LoraHub's): screening losses for all; the search mixed the len(mix) best, best first,
    with the weights `mix`."""
    base = BaseModel.objects.get_or_create(identifier="google/flan-t5-large")[0]
    names = [f"lorahub_flan_t5_large-{TASKS[i % len(TASKS)]}-{i:03d}" for i in range(n)]
    adapters = Adapter.objects.bulk_create(
        Adapter(owner=publisher, name=name, base_model=base) for name in names
    )
    versions = AdapterVersion.objects.bulk_create(
        AdapterVersion(
            adapter=a,
            number=1,
            commit=f"{a.pk:040x}",
            peft_type="LORA",
            r=16,
            lora_alpha=32,
            dtype="float32",
            param_count=1,
        )
        for a in adapters
    )
    rng = random.Random(0)
    losses = [round(rng.uniform(1.0, 4.0), 6) for _ in range(n)]
    selected = sorted(range(n), key=losses.__getitem__)[: len(mix)]
    weights = [0.0] * n
    for i, w in zip(selected, mix, strict=True):
        weights[i] = w
    job = Job.objects.create(
        owner=owner,
        kind=Job.Kind.LORAHUB,
        name="reverse words",
        base_model=base,
        parameters={
            "budget": n + 100,
            "seed": 0,
            "optimizer": "NGOpt",
            "mode": "screen",
            "top_k": 5,
        },
        status=Job.Status.SUCCEEDED,
        step=n + 100,
        budget=n + 100,
        best_loss=0.9,
        history=[
            {"step": s, "loss": 3 - s / 100, "best_loss": 1 - s / 1000} for s in range(1, 101)
        ],
        best_weights=weights,
        result_file=f"jobs/lorahub-{n}.zip",
        result={
            "weights": weights,
            "screening": [
                {"index": i, "name": names[i], "sha256": None, "ce": loss, "loss": loss}
                for i, loss in enumerate(losses)
            ],
            "selected": selected,
        },
    )
    JobInput.objects.bulk_create(
        JobInput(job=job, position=i, version=v, label=f"{v.adapter.full_name} v1")
        for i, v in enumerate(versions)
    )
    return job
