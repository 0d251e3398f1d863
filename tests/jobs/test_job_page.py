"""The job page at a glance, job names, "Run again" and "Clone and edit"."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from composer.charts import weight_table
from composer.forms import FORMS
from composer.models import Job, JobInput
from composer.rerun import job_form_initial
from tests.jobs.screened import screened_job

EXAMPLES = '{"input": "abc", "output": "cba"}\n{"input": "hello", "output": "olleh"}\n'


def launch(client, catalog, kind, **data):
    data = {"adapters": [catalog["t5-a"].pk, catalog["t5-b"].pk], **data}
    response = client.post(reverse("composer:new", args=[kind]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Job.objects.latest("id")


def lorahub(client, catalog, **extra):
    data = {"candidates": "pick", "top_n": 5, "examples": EXAMPLES, "heldout": "x\ty\n"}
    data |= {"budget": 12, "seed": 3, "optimizer": "OnePlusOne"}
    return launch(client, catalog, "lorahub", **data, **extra)


def test_a_job_is_named_by_the_user_or_after_its_inputs(alice_client, catalog):
    assert lorahub(alice_client, catalog, name="reverse words").name == "reverse words"
    job = launch(alice_client, catalog, "merge", merge_method="linear")
    assert job.name == "linear merge of t5-a + t5-b"
    page = alice_client.get(reverse("composer:list")).content.decode()
    assert "reverse words" in page and "linear merge of t5-a + t5-b" in page
    assert ">Kind</th>" in page and "Score" in page and "Duration" in page


@pytest.mark.parametrize(
    "method, name",
    [
        ("ties", "TIES merge of t5-a + t5-b"),
        ("knots_ties", "KnOTS-TIES merge of t5-a + t5-b"),
        ("task_arithmetic", "task-arithmetic merge of t5-a + t5-b"),
    ],
)
def test_a_merge_is_named_after_its_method(alice_client, catalog, method, name):
    job = launch(alice_client, catalog, "merge", merge_method=method, density=0.5)
    assert job.name == name
    # its parameters name the method the same way, not by its id ("method knots ties")
    page = alice_client.get(job.get_absolute_url()).content.decode()
    label = name.removesuffix(" merge of t5-a + t5-b")
    assert f"<strong>Parameters:</strong> method {label}" in page


def test_a_link_presets_the_name(alice_client, catalog):
    page = alice_client.get(reverse("composer:new", args=["lorahub"]) + "?name=reverse-vowels")
    assert 'value="reverse-vowels"' in page.content.decode()


def finished(job, weights, evaluation=None):
    history = [
        {"step": i, "loss": 3 - 0.1 * i, "best_loss": 3 - 0.1 * i, "weights": weights}
        for i in range(1, 13)
    ]
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.SUCCEEDED,
        step=12,
        best_loss=1.8,
        history=history,
        best_weights=weights,
        result={"weights": weights, "evaluation": evaluation},
    )
    job.refresh_from_db()
    return job


def test_job_page_reads_at_a_glance(alice_client, catalog):
    job = lorahub(alice_client, catalog, name="reverse words")
    evaluation = {
        "base": {"n": 1, "loss": 3.2, "exact_match": 0.0, "predictions": []},
        "composed": {"n": 1, "loss": 0.4, "exact_match": 1.0, "predictions": []},
    }
    finished(job, [-0.95, 0.9], evaluation)
    page = alice_client.get(job.get_absolute_url()).content.decode()
    # Status and the result's score come before the charts and the inputs.
    status, score = page.index('data-status="succeeded"'), page.index('id="job-score"')
    assert status < score < page.index('id="loss-curve"') < page.index('id="job-inputs"')
    score_text = r"Exact match 1\.000</strong> on 1 held-out example \(base model 0\.000\)"
    assert re.search(score_text, page)
    # Inputs folded; parameters in words, not a dict.
    assert '<details id="job-inputs">' in page and "Inputs: 2 adapters" in page
    assert "12 search steps with the OnePlusOne optimiser, seed 3" in page
    assert "each candidate screened alone, then up to the 5 best mixed" in page  # the form's K
    assert "{'budget'" not in page and "&#x27;budget&#x27;" not in page
    # Weights: a table with bars, the largest in magnitude first, labelled final once done.
    assert "<caption>Weights (final)</caption>" in page
    cells = r'<td class="weight-label"><a href="([^"]+)">([^<]+)</a></td><td class="num">([^<]+)<'
    urls = [catalog[n].get_absolute_url() for n in ("t5-a", "t5-b")]
    rows = re.findall(cells, page)
    assert rows == [(urls[0], "bob/t5-a v1", "-0.950"), (urls[1], "bob/t5-b v1", "0.900")]
    assert 'id="weights-zero"' not in page  # no input at weight 0
    assert page.count('class="weight-bar"') == 1 and page.count("weight-bar negative") == 1
    # The loss curve has value ticks and step numbers.
    curve = page[page.index('id="loss-curve"') : page.index("</svg>")]
    assert ">3.000<" not in curve and ">2.900<" in curve and ">1.800<" in curve
    assert ">1<" in curve and ">12<" in curve and ">step<" in curve and ">loss<" in curve


def test_weights_of_a_running_job_are_the_best_so_far(alice_client, catalog):
    job = lorahub(alice_client, catalog)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, step=3, best_weights=[1, 2])
    page = alice_client.get(reverse("composer:status", args=[job.pk])).content.decode()
    assert "<caption>Best weights so far (step 3)</caption>" in page
    # the inputs at weight 0 are counted, not listed: the fragment is redrawn every second
    Job.objects.filter(pk=job.pk).update(best_weights=[1, 0])
    page = alice_client.get(reverse("composer:status", args=[job.pk])).content.decode()
    assert page.count('class="weight-label"') == 1
    assert "1 other screened candidate at weight 0 so far." in page and "<details" not in page


def test_run_again_launches_the_same_job(alice_client, catalog):
    job = lorahub(alice_client, catalog, name="reverse words", separator=" = ")
    finished(job, [0.5, 0.5])
    response = alice_client.post(reverse("composer:again", args=[job.pk]))
    again = Job.objects.latest("id")
    assert again.pk != job.pk and response["Location"] == again.get_absolute_url()
    same = ("kind", "name", "parameters", "examples", "heldout", "base_model_id")
    assert [getattr(again, f) for f in same] == [getattr(job, f) for f in same]
    assert [i.version_id for i in again.inputs.all()] == [i.version_id for i in job.inputs.all()]
    assert again.status == Job.Status.QUEUED


def test_run_again_of_a_merge_keeps_weights_and_method(alice_client, catalog):
    a, b = catalog["t5-a"].pk, catalog["t5-b"].pk
    weights = {f"weight_{a}": "2", f"weight_{b}": "1"}
    job = launch(alice_client, catalog, "merge", merge_method="ties", density="0.3", **weights)
    alice_client.post(reverse("composer:again", args=[job.pk]))
    again = Job.objects.latest("id")
    assert again.pk != job.pk
    assert again.parameters == job.parameters == {"method": "ties", "density": 0.3}
    assert [i.weight for i in again.inputs.all()] == [2.0, 1.0]


@pytest.mark.parametrize("kind", ["merge", "lego"])
def test_run_again_and_clone_of_a_merge_keep_its_example_sets(alice_client, catalog, kind):
    sets = '{"input": "ab", "output": "ba"}\n---\n{"input": "cd", "output": "CD"}\n'
    extra = {"merge_method": "linear"} if kind == "merge" else {}
    job = launch(alice_client, catalog, kind, examples=sets, **extra)
    assert [e.get("task") for e in job.examples] == [0, 1]
    page = alice_client.get(reverse("composer:new", args=[kind]) + f"?from={job.pk}")
    assert "---" in page.content.decode().split('name="examples"')[1].split("</textarea>")[0]
    alice_client.post(reverse("composer:again", args=[job.pk]))
    again = Job.objects.latest("id")
    assert again.pk != job.pk and again.examples == job.examples


def test_clone_and_edit_fills_the_form(alice_client, catalog):
    job = launch(alice_client, catalog, "lego", k="3", units="raw")
    page = alice_client.get(reverse("composer:new", args=["lego"]) + f"?from={job.pk}")
    html = page.content.decode()
    assert re.search(r'name="k" value="3"', html)
    assert re.search(r'value="raw"[^>]*checked|checked[^>]*value="raw"', html) or (
        'value="raw" selected' in html
    )
    assert html.count("checked") >= 2  # both adapters ticked


def test_run_again_refuses_what_no_longer_validates(alice_client, catalog, bob):
    job = launch(alice_client, catalog, "merge", merge_method="linear")
    catalog["t5-b"].private = True  # bob hides one of the inputs
    catalog["t5-b"].save()
    response = alice_client.post(reverse("composer:again", args=[job.pk]), follow=True)
    assert Job.objects.count() == 1
    assert response.redirect_chain[-1][0].endswith(f"?from={job.pk}")
    assert "cannot run again as it was" in response.content.decode()


def test_run_again_and_clone_are_the_owners_only(client, bob, catalog, alice_client):
    job = launch(alice_client, catalog, "merge", merge_method="linear")
    client.force_login(bob)
    assert client.post(reverse("composer:again", args=[job.pk])).status_code == 404
    clone = reverse("composer:new", args=["merge"]) + f"?from={job.pk}"
    assert client.get(clone).status_code == 404
    assert Job.objects.count() == 1


def test_form_values_cover_a_removed_input(alice, catalog, alice_client):
    job = launch(alice_client, catalog, "merge", merge_method="linear")
    JobInput.objects.filter(job=job, position=1).update(version=None)
    initial = job_form_initial(job, FORMS["merge"])
    assert initial["adapters"] == [catalog["t5-a"].pk]
    page = alice_client.get(reverse("composer:new", args=["merge"]) + f"?from={job.pk}")
    assert "bob/t5-b v1 is no longer in the catalog" in page.content.decode()


def test_a_merge_is_scored_on_its_example_sets(alice_client, catalog):
    job = launch(alice_client, catalog, "merge", merge_method="linear")

    def scored(em: float) -> dict:
        return {"exact_match": em, "loss": 1.0}

    sets = [
        {"n": 3, "input": i, "base": scored(b), "parents": [scored(1.0)], "merged": scored(m)}
        for i, (b, m) in enumerate([(0.0, 1.0), (1.0, 0.0)])
    ]
    sets[1]["n"] = 1
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.SUCCEEDED, result={"merge_evaluation": {"sets": sets}}
    )
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert re.search(r"Exact match 0\.750</strong> on 4 examples \(base model 0\.250\)", page)
    assert "EM 0.75" in alice_client.get(reverse("composer:list")).content.decode()


def test_a_job_held_by_the_running_cap_says_why_and_has_no_place(alice_client, alice, settings):
    settings.COMPOSER_MAX_RUNNING_JOBS_PER_USER = 2
    running = {"status": Job.Status.RUNNING, "heartbeat_at": timezone.now(), "worker_host": "gpu-7"}
    Job.objects.create(owner=alice, kind=Job.Kind.LEGO, **running)
    job = Job.objects.create(owner=alice, kind=Job.Kind.LEGO)

    def page(job):
        return alice_client.get(reverse("composer:status", args=[job.pk])).content.decode()

    def place(job):
        found = re.search(r'<dd id="job-position">(\d+)</dd>', page(job))
        return found and int(found[1])

    assert place(job) == 1 and 'id="job-held"' not in page(job)
    # a second queued job of alice's starts only after one of hers ends: no place yet
    second = Job.objects.create(owner=alice, kind=Job.Kind.LEGO)
    assert place(second) is None
    assert "You have 1 job running and 1 queued before this one, and at most 2 run" in page(second)
    second.delete()
    # at the cap: held, with no place in the queue, even alone in it
    Job.objects.create(owner=alice, kind=Job.Kind.LEGO, **running)
    held = page(job)
    assert "You have 2 jobs running, and at most 2 run at once: this one waits for one" in held
    assert 'id="job-position"' not in held


def test_a_screened_job_lists_the_weighted_adapters_and_folds_the_rest(alice_client, alice, bob):
    job = screened_job(alice, bob, n=500, mix=(0.9, 0.55, 0.2, -0.5, 0.15))
    page = alice_client.get(job.get_absolute_url()).content.decode()
    table = page[page.index('id="weights"') : page.index('id="weights-zero"')]
    rows = re.findall(r'<td class="weight-label"><a href="([^"]+)">([^<]+)</a></td>', table)
    searched = [job.inputs.get(position=i).version.adapter for i in job.result["selected"]]
    # the 5 searched, by |weight|: 0.9, 0.55, -0.5 (red), 0.2, 0.15, each to its catalog page
    order = [0, 1, 3, 2, 4]
    assert rows == [(searched[i].get_absolute_url(), f"{searched[i].full_name} v1") for i in order]
    assert table.count("weight-bar negative") == 1
    # the other 495 folded, best screening loss first, the first 100 listed
    folded = page[page.index('id="weights-zero"') :]
    folded = folded[: folded.index("</details>")]
    assert "<summary>495 other screened candidates (weight 0)</summary>" in folded
    losses = [float(x) for x in re.findall(r'<td class="num">([\d.]+)</td>', folded)]
    assert len(losses) == 100 and losses == sorted(losses)
    selected = job.result["selected"]
    best_zero = min(s["loss"] for s in job.result["screening"] if s["index"] not in selected)
    assert losses[0] == round(best_zero, 4)
    assert "the download holds the other 395" in folded
    # the inputs list is bounded too: the page stays small however many were screened
    assert "and 400 more" in page[page.index('id="job-inputs"') :]
    assert len(page) < 64_000, len(page)


def test_folded_inputs_go_by_screening_loss_a_loss_that_was_not_finite_last(
    alice_client, alice, bob
):
    losses = [2.0, 1.0, None, 1.5]  # a NaN loss is stored as None
    screening = [{"index": i, "loss": loss} for i, loss in enumerate(losses)]
    inputs = [(f"a{i}", None) for i in range(4)]
    table = weight_table([0.0, 1.0, 0.0, 0.0], inputs, screening, searched=[1])
    assert [r["label"] for r in table["rows"]] == ["a1"]
    assert [r["label"] for r in table["folded"]] == ["a3", "a0", "a2"]
    job = screened_job(alice, bob, n=8, mix=(1.0,))
    zero = [r for r in job.result["screening"] if r["index"] not in job.result["selected"]]
    zero[0]["loss"] = None
    Job.objects.filter(pk=job.pk).update(result=job.result)
    page = alice_client.get(job.get_absolute_url()).content.decode()
    folded = page[page.index('id="weights-zero"') :]
    cells = re.findall(r'<td class="num">(.*?)</td>', folded[: folded.index("</details>")])
    assert len(cells) == 7 and "not finite" in cells[-1]  # a cell in every row, the last
