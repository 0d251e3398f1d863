"""What a running job writes to its row: the progress of a screened composition over the
most candidates a job may have stays small."""

import json

import numpy as np

from composer.engine.lorahub import StepInfo
from composer.forms import MAX_SCREENED
from composer.lifecycle import job_claim
from composer.models import Job
from composer.progress import JobMonitor, finite_json


def screened_steps(n: int, k: int, budget: int):
    """The steps compose_screened reports: each candidate alone, then a search over k of
    them placed among all n."""
    rng = np.random.default_rng(0)
    best = np.eye(n)[0]
    for step in range(1, budget + 1):
        if step <= n:
            w = np.eye(n)[step - 1]
        else:
            w = np.zeros(n)
            w[:k] = rng.uniform(-1.5, 1.5, k)
        yield StepInfo(step, budget, 3.0 / step, 3.0 / step, w.tolist(), best.tolist())


def test_a_job_over_the_most_candidates_stores_its_progress_sparsely(alice):
    n, k, budget = MAX_SCREENED, 5, 1000  # the form's largest: 500 screened, 500 searched
    job = job_claim(Job.objects.create(owner=alice, kind=Job.Kind.LORAHUB).pk, device="cpu")
    monitor = JobMonitor(job)
    for info in screened_steps(n, k, budget):
        monitor.on_step(info)
    monitor.flush()
    job.refresh_from_db()
    history = job.history
    assert [h["step"] for h in history] == list(range(1, budget + 1))
    # Bounded by the steps and the candidates searched, not by the candidates screened:
    # 500 weights a step would be over 2 MB.
    size = len(json.dumps(history))
    assert size < budget * 200, size
    assert history[6]["weights"] == {"6": 1.0}  # a screening step: one entry
    assert len(history[-1]["weights"]) == k
    assert history[-1]["loss"] == history[-1]["best_loss"] == round(3.0 / budget, 6)
    assert len(job.weights) == len(job.best_weights) == n  # the latest step's, in full


def test_a_loss_that_is_not_finite_is_stored_as_null_and_the_page_still_draws(alice_client, alice):
    """PostgreSQL refuses NaN in JSON: a step of an adapter whose weights overflow made
    every progress write fail, and the job stayed running until it was reaped."""
    job = job_claim(Job.objects.create(owner=alice, kind=Job.Kind.LORAHUB).pk, device="cpu")
    monitor = JobMonitor(job)
    nan, inf = float("nan"), float("inf")
    monitor.on_step(StepInfo(1, 3, nan, nan, [1.0, 0.0], [1.0, 0.0]))
    monitor.on_step(StepInfo(2, 3, 2.5, 2.5, [0.0, 1.0], [0.0, 1.0]))
    monitor.on_step(StepInfo(3, 3, inf, 2.5, [0.5, 0.5], [0.0, 1.0]))
    monitor.flush()
    assert not monitor.lost
    job.refresh_from_db()
    assert [(h["loss"], h["best_loss"]) for h in job.history] == [
        (None, None),
        (2.5, 2.5),
        (None, 2.5),
    ]
    assert finite_json({"screening": [{"loss": nan, "ce": 1.0}], "n": 2}) == {
        "screening": [{"loss": None, "ce": 1.0}],
        "n": 2,
    }
    response = alice_client.get(f"/jobs/{job.pk}/")
    assert response.status_code == 200 and b"<polyline" in response.content
