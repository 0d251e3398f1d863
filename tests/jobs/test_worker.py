"""Each kind of job through a real Celery worker on Redis and the real database.

The result stored by the worker must load with peft and equal what the engine produces
when called directly with the same inputs.
"""

import time

import pytest
import torch
from django.urls import reverse
from safetensors.torch import load_file

from composer.engine import run
from composer.models import Job
from tests.jobs.conftest import job_wait, unzip_result, wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

EXAMPLES = "\n".join(
    f'{{"input": "{w}", "output": "{w[::-1]}"}}' for w in ["abc", "hello", "lora", "merge"]
)
HELDOUT = "hub\tbuh\nkey\tyek\n"


@pytest.fixture(scope="module")
def worker(worker_factory):
    return worker_factory()


@pytest.fixture
def storage_dirs(jobs_env):
    """Catalog files go where the worker reads them."""


@pytest.fixture
def client_alice(client, alice, catalog):
    client.force_login(alice)
    return client


def launch(client, kind, data) -> Job:
    r = client.post(reverse("composer:new", args=[kind]), data)
    assert r.status_code == 302, r.content.decode()[-3000:]
    return Job.objects.get(pk=int(r["Location"].rstrip("/").rsplit("/", 1)[1]))


def same_tensors(a_dir, b_dir):
    a = load_file(a_dir / "adapter_model.safetensors")
    b = load_file(b_dir / "adapter_model.safetensors")
    assert sorted(a) == sorted(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def check_loads_with_peft(toys, adapter_dir):
    from peft import PeftModel

    from composer.engine.base_models import load_base_model

    base = load_base_model(toys / "t5")
    ids = torch.tensor([[5, 6, 7, 1]])
    with torch.no_grad():
        before = base(input_ids=ids, decoder_input_ids=ids).logits
        model = PeftModel.from_pretrained(base, adapter_dir)
        after = model(input_ids=ids, decoder_input_ids=ids).logits
    assert torch.isfinite(after).all() and not torch.allclose(before, after)


def test_lorahub_job_runs_on_the_worker(worker, client_alice, catalog, toys, tmp_path):
    data = {
        "candidates": "pick",
        "adapters": [catalog[n].pk for n in ("t5-a", "t5-b", "t5-c")],
        "top_n": 3,
        "examples": EXAMPLES,
        "heldout": HELDOUT,
        "budget": 15,
        "seed": 7,
        "optimizer": "NGOpt",
    }
    job = job_wait(launch(client_alice, "lorahub", data), Job.FINISHED, worker=worker)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.step, job.budget, job.device, job.attempts) == (15, 15, "cpu", 1)
    # the default mode: one progress step for screening the 3 candidates, then the search
    assert [h["step"] for h in job.history] == [3, *range(4, 16)]
    assert job.best_loss == min(h["loss"] for h in job.history)
    assert job.worker_host and job.started_at <= job.finished_at
    assert set(job.result["evaluation"]) >= {"base", "composed"}

    got = unzip_result(job, tmp_path / "got")
    check_loads_with_peft(toys, got)
    from composer.engine.examples import parse_examples
    from composer.engine.lorahub import LoraHubParams

    direct = run.run_lorahub(
        toys / "t5",
        [job.inputs.all()[i].version and _dir(job, i) for i in range(3)],
        parse_examples(EXAMPLES),
        tmp_path / "direct",
        LoraHubParams(budget=15, seed=7, optimizer="NGOpt"),
        device="cpu",
    )
    assert direct["weights"] == pytest.approx(job.result["weights"], abs=1e-6)
    same_tensors(got, tmp_path / "direct")

    page = client_alice.get(reverse("composer:status", args=[job.pk])).content.decode()
    assert 'id="loss-curve"' in page and 'id="weights"' in page and "hx-trigger" not in page
    r = client_alice.get(reverse("composer:download", args=[job.pk]))
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"


def _dir(job, i):
    from composer.inputs import version_dir

    return version_dir(job.inputs.all()[i].version)


def test_lego_and_merge_jobs_run_on_the_worker(worker, client_alice, catalog, toys, tmp_path):
    from composer.engine.lego import LegoParams

    pks = [catalog[n].pk for n in ("t5-a", "t5-b")]
    lego_data = {"adapters": pks, "k": 6, "param_reweight": "on", "output_reweight": "on"}
    lego = launch(client_alice, "lego", lego_data)
    merge = launch(
        client_alice,
        "merge",
        {
            "adapters": pks,
            "merge_method": "ties",
            f"weight_{pks[0]}": "0.6",
            f"weight_{pks[1]}": "0.4",
            "density": 0.5,
        },
    )
    for job in (lego, merge):
        job_wait(job, Job.FINISHED, worker=worker)
        assert job.status == Job.Status.SUCCEEDED, job.error
    dirs = [_dir(lego, 0), _dir(lego, 1)]
    run.run_lego(dirs, tmp_path / "lego", LegoParams(k=6))
    same_tensors(unzip_result(lego, tmp_path / "lego-got"), tmp_path / "lego")
    run.run_merge("ties", dirs, tmp_path / "ties", weights=[0.6, 0.4], density=0.5)
    got = unzip_result(merge, tmp_path / "ties-got")
    same_tensors(got, tmp_path / "ties")
    check_loads_with_peft(toys, got)


def test_cancel_stops_a_running_job(worker, client_alice, catalog):
    data = {
        "candidates": "pick",
        "adapters": [catalog[n].pk for n in ("t5-a", "t5-b")],
        "top_n": 2,
        "examples": EXAMPLES,
        "budget": 1000,
        "seed": 0,
        "optimizer": "NGOpt",
    }
    job = launch(client_alice, "lorahub", data)
    wait_for(lambda: Job.objects.get(pk=job.pk).step >= 2, 60, message="no progress")
    asked = time.monotonic()
    client_alice.post(reverse("composer:cancel", args=[job.pk]))
    job_wait(job, Job.FINISHED, timeout=30, worker=worker)
    assert job.status == Job.Status.CANCELLED
    assert time.monotonic() - asked < 10 and job.step < 1000
    assert not job.result_file


def test_merge_jobs_score_parents_and_result_on_examples(
    worker, client_alice, catalog, toys, tmp_path
):
    """One set per adapter for a KnOTS merge, one set for all for LoRA-LEGO: the worker
    records what the engine measures when called directly, and the page shows it."""
    pks = [catalog[n].pk for n in ("t5-a", "t5-b")]
    two_sets = "abc\tcba\nhello\tolleh\n---\nlora\tarol\n"
    merge = launch(
        client_alice,
        "merge",
        {"adapters": pks, "merge_method": "knots_ties", "density": 0.5, "examples": two_sets},
    )
    lego_data = {"adapters": pks, "k": 4, "param_reweight": "on", "output_reweight": "on"}
    lego = launch(client_alice, "lego", {**lego_data, "examples": EXAMPLES})
    assert merge.examples[-1] == {"input": "lora", "output": "arol", "task": 1}
    for job in (merge, lego):
        job_wait(job, Job.FINISHED, worker=worker)
        assert job.status == Job.Status.SUCCEEDED, job.error
    from composer.engine.examples import parse_examples
    from composer.engine.lego import LegoParams

    dirs = [_dir(merge, 0), _dir(merge, 1)]
    sets = [parse_examples("abc\tcba\nhello\tolleh\n"), parse_examples("lora\tarol\n")]
    direct = run.run_merge(
        "knots_ties",
        dirs,
        tmp_path / "knots",
        weights=[0.5, 0.5],
        density=0.5,
        check=run.MergeCheck(toys / "t5", sets, "cpu"),
    )
    got = merge.result["merge_evaluation"]["sets"]
    assert [(s["input"], s["n"]) for s in got] == [(0, 2), (1, 1)]
    for mine, theirs in zip(got, direct["merge_evaluation"]["sets"], strict=True):
        assert mine["parents"][0] == pytest.approx(theirs["parents"][0])
        assert mine["merged"] == pytest.approx(theirs["merged"])
    direct = run.run_lego(
        dirs,
        tmp_path / "lego",
        LegoParams(k=4),
        check=run.MergeCheck(toys / "t5", [parse_examples(EXAMPLES)], "cpu"),
    )
    (got,) = lego.result["merge_evaluation"]["sets"]
    assert [p["input"] for p in got["parents"]] == [0, 1]
    assert got["merged"] == pytest.approx(direct["merge_evaluation"]["sets"][0]["merged"])

    page = client_alice.get(reverse("composer:status", args=[merge.pk])).content.decode()
    assert 'id="merge-check"' in page and page.count("<tr><th>bob/t5-") == 2
    page = client_alice.get(reverse("composer:status", args=[lego.pk])).content.decode()
    assert 'id="merge-check"' in page and "Merged adapter" in page and "Base model" in page
