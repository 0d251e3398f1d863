"""Launch forms: what can be checked is checked at submit; a job that cannot work never queues."""

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from composer.models import Job
from hub.models import Adapter, BaseModel
from tests.jobs import form_data
from tests.jobs.conftest import race
from tests.jobs.form_data import ids
from tests.services import require

EXAMPLES = '{"input": "abc", "output": "cba"}\n{"input": "hello", "output": "olleh"}\n'


def lorahub_data(catalog, *names, **extra):
    return form_data.lorahub_data(catalog, *names, **{"examples": EXAMPLES, "top_n": 5, **extra})


def test_lorahub_submit_queues_a_job_after_commit(
    alice_client, alice, catalog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        r = alice_client.post(
            reverse("composer:new", args=["lorahub"]),
            lorahub_data(catalog, "t5-b", "t5-a", heldout="x\ty\n"),
        )
    job = Job.objects.get()
    assert r.status_code == 302 and r["Location"] == job.get_absolute_url()
    assert len(callbacks) == 1  # the Celery message goes out only after commit
    assert (job.owner, job.kind, job.status) == (alice, "lorahub", "queued")
    assert job.parameters == {
        "budget": 12,
        "seed": 3,
        "optimizer": "NGOpt",
        "mode": "screen",  # the default
        "top_k": 5,
    }
    assert [i.version_id for i in job.inputs.all()] == [
        catalog["t5-a"].current_version_id,
        catalog["t5-b"].current_version_id,
    ]
    assert job.examples[1] == {"input": "hello", "output": "olleh"}
    assert job.heldout == [{"input": "x", "output": "y"}]
    assert job.base_model.identifier == "toy/tiny-t5"


@pytest.mark.parametrize(
    "names, message",
    [
        (("t5-a", "t5-qk"), "targets different modules"),
        (("t5-a", "llama-a"), "different base models"),
        (("t5-a",), "at least 2 adapters"),
    ],
)
def test_lorahub_refuses_adapters_that_cannot_work(alice_client, catalog, names, message):
    r = alice_client.post(reverse("composer:new", args=["lorahub"]), lorahub_data(catalog, *names))
    assert r.status_code == 400
    assert message in r.content.decode()
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "examples, message",
    [
        ('{"input": "a", "output": "b"}\n{"input": "a"\n', "line 2: invalid JSON"),
        ("", "Paste or upload a few examples"),
    ],
)
def test_lorahub_refuses_bad_examples(alice_client, catalog, examples, message):
    data = lorahub_data(catalog, "t5-a", "t5-b", examples=examples)
    r = alice_client.post(reverse("composer:new", args=["lorahub"]), data)
    assert message in r.content.decode()
    assert not Job.objects.exists()


def test_lorahub_refuses_out_of_range_budget(alice_client, catalog):
    data = lorahub_data(catalog, "t5-a", "t5-b", budget=0)
    r = alice_client.post(reverse("composer:new", args=["lorahub"]), data)
    assert "greater than or equal to 1" in r.content.decode()
    assert not Job.objects.exists()


def test_lorahub_separator_is_kept_as_typed_within_its_limit(alice_client, catalog):
    url = reverse("composer:new", args=["lorahub"])
    r = alice_client.post(url, lorahub_data(catalog, "t5-a", "t5-b", separator="x" * 17))
    assert "at most 16 characters" in r.content.decode()
    assert not Job.objects.exists()
    alice_client.post(url, lorahub_data(catalog, "t5-a", "t5-b", separator=" = "))
    assert Job.objects.get().parameters["separator"] == " = "  # spaces are part of it


def test_lorahub_top_n_takes_the_most_downloaded_compatible(alice_client, catalog):
    for name, downloads in {"t5-c": 30, "t5-qk": 20, "t5-a": 10, "t5-b": 5}.items():
        Adapter.objects.filter(pk=catalog[name].pk).update(downloads=downloads)
    base = BaseModel.objects.get(identifier="toy/tiny-t5")
    data = lorahub_data(catalog, candidates="top", base_model=base.pk, top_n=3)
    data.pop("adapters")
    r = alice_client.post(reverse("composer:new", args=["lorahub"]), data)
    assert r.status_code == 302, r.content.decode()[:2000]
    labels = [i.label for i in Job.objects.get().inputs.all()]
    assert labels == ["bob/t5-c v1", "bob/t5-a v1", "bob/t5-b v1"]


def test_lorahub_screens_every_compatible_adapter_the_user_can_see(
    alice_client, alice, toys, catalog, monkeypatch
):
    """The default candidate set, resolved on submit from the catalog: bob's public T5
    adapters that fit together and alice's own private one; never bob's private one, the
    T5 adapter on other modules or the Llama one. Capped, the most downloaded first."""
    from composer import forms
    from tests.jobs.conftest import publish_toys

    mine = publish_toys(alice, toys, ["t5-c"])["t5-c"]
    Adapter.objects.filter(pk=mine.pk).update(private=True, downloads=5)
    Adapter.objects.filter(pk=catalog["t5-b"].pk).update(private=True, downloads=50)
    Adapter.objects.filter(pk=catalog["t5-a"].pk).update(downloads=10)
    base = BaseModel.objects.get(identifier="toy/tiny-t5")
    url = reverse("composer:new", args=["lorahub"])
    data = lorahub_data(catalog, candidates="all", base_model=base.pk)
    data.pop("adapters")
    r = alice_client.post(url, data)
    assert r.status_code == 302, r.content.decode()[:2000]
    job = Job.objects.get()
    assert [i.label for i in job.inputs.all()] == ["bob/t5-a v1", "alice/t5-c v1", "bob/t5-c v1"]
    assert job.parameters["mode"] == "screen"
    monkeypatch.setattr(forms, "MAX_SCREENED", 2)
    assert alice_client.post(url, data).status_code == 302
    newest = Job.objects.order_by("-pk").first()
    assert [i.label for i in newest.inputs.all()] == ["bob/t5-a v1", "alice/t5-c v1"]
    r = alice_client.post(url, {**data, "mode": "reference"})
    assert "search mixes at most 32 adapters" in r.content.decode()


def test_private_adapters_of_others_cannot_be_used(alice_client, catalog):
    Adapter.objects.filter(pk=catalog["t5-b"].pk).update(private=True)
    r = alice_client.post(
        reverse("composer:new", args=["lorahub"]), lorahub_data(catalog, "t5-a", "t5-b")
    )
    assert "Select a valid choice" in r.content.decode()
    assert not Job.objects.exists()


def test_merge_form_checks_weights_and_density(alice_client, catalog):
    url = reverse("composer:new", args=["merge"])
    a, b = ids(catalog, "t5-a", "t5-b")
    r = alice_client.post(url, {"adapters": [a, b], "merge_method": "ties", f"weight_{a}": "1"})
    page = r.content.decode()
    assert "Give a weight to every chosen adapter, or to none" in page
    assert "Missing: bob/t5-b v1." in page
    r = alice_client.post(url, {"adapters": [a, b], "merge_method": "ties"})
    assert "ties needs a density" in r.content.decode()
    for bad in ("nan", "inf", "-Infinity", "1e308", "x"):
        data = {"adapters": [a, b], "merge_method": "linear", f"weight_{a}": bad}
        r = alice_client.post(url, data | {f"weight_{b}": "1"})
        assert r.status_code == 400 and "field-error" in r.content.decode(), bad
    assert not Job.objects.exists()
    r = alice_client.post(
        url,
        {
            "adapters": [a, b],
            "merge_method": "ties",
            f"weight_{b}": "0.3",
            f"weight_{a}": "0.7",
            "density": 0.5,
            "rank": 3,
        },
    )
    job = Job.objects.get()
    assert job.parameters == {"method": "ties", "density": 0.5}  # no rank: ties has none
    assert [(i.label, i.weight) for i in job.inputs.all()] == [
        ("bob/t5-a v1", 0.7),
        ("bob/t5-b v1", 0.3),
    ]


def test_merge_form_has_a_weight_beside_each_adapter(alice_client, catalog):
    a, b = ids(catalog, "t5-a", "t5-b")
    page = alice_client.get(reverse("composer:new", args=["merge"]) + f"?adapters={a}")
    html = page.content.decode()
    row = html[html.index(f'value="{a}"') :]
    row = row[: row.index("</tr>")]
    assert f'name="weight_{a}"' in row and 'aria-label="Weight of bob/t5-a"' in row
    assert f'name="weight_{b}"' in html


def test_lego_form_checks_k(alice_client, catalog):
    url = reverse("composer:new", args=["lego"])
    adapters = ids(catalog, "t5-a", "t5-b")
    r = alice_client.post(url, {"adapters": adapters, "k": 9, "param_reweight": "on"})
    assert "k = 9 is more than the 8 rank-one units" in r.content.decode()
    r = alice_client.post(url, {"adapters": adapters, "k": 6, "param_reweight": "on"})
    assert r.status_code == 302
    assert Job.objects.get().parameters == {
        "k": 6,
        "param_reweight": True,
        "output_reweight": False,
        "units": "svd",
        "centroid": "mean",
    }
    data = {"adapters": adapters, "units": "raw", "output_reweight": "on", "centroid": "rank1"}
    assert alice_client.post(url, data).status_code == 302
    assert Job.objects.latest("pk").parameters == {
        "param_reweight": False,
        "output_reweight": True,
        "units": "raw",
        "centroid": "rank1",
    }
    r = alice_client.post(url, {"adapters": adapters, "units": "pickle"})
    assert "Select a valid choice" in r.content.decode()


def test_forms_prefill_adapters_from_the_catalog(alice_client, catalog):
    url = reverse("composer:new", args=["lego"])
    r = alice_client.get(url, {"adapters": ids(catalog, "t5-c")})
    page = r.content.decode()
    assert f'value="{catalog["t5-c"].pk}" ' in page and "checked" in page
    # The picker offers adapters for the same base model, not the whole catalog.
    assert "bob/t5-a" in page and "bob/llama-a" not in page


def test_lorahub_form_preselects_the_only_base_model_the_workers_have(alice_client, catalog):
    url = reverse("composer:new", args=["lorahub"])
    t5, llama = catalog["t5-a"].base_model, catalog["llama-a"].base_model
    page = alice_client.get(url).content.decode()
    assert '<option value="" selected>' in page  # two: the user picks
    BaseModel.objects.filter(pk=llama.pk).update(local_path="", commit="")
    page = alice_client.get(url).content.decode()
    assert f'<option value="{t5.pk}" selected>' in page


def test_login_required(client, db):
    r = client.get(reverse("composer:list"))
    assert r.status_code == 302 and "login" in r["Location"]


@pytest.mark.parametrize(
    "extra, parameters",
    [
        ({"merge_method": "svd"}, {"method": "svd", "rank": 3}),
        (
            {"merge_method": "knots_ties", "density": 0.4},
            {
                "method": "knots_ties",
                "density": 0.4,
                "rank": 3,
                "scaling_coef": 1.0,
                "disjoint": "mean",
            },
        ),
    ],
)
def test_merge_form_passes_rank_to_rank_methods(alice_client, catalog, extra, parameters):
    url = reverse("composer:new", args=["merge"])
    data = {"adapters": ids(catalog, "t5-a", "t5-b"), "rank": 3, **extra}
    assert alice_client.post(url, data).status_code == 302
    job = Job.objects.get()
    assert job.parameters == parameters
    assert [i.weight for i in job.inputs.all()] == [0.5, 0.5]


def test_merge_form_bounds_the_knots_scaling_coefficient(alice_client, catalog):
    url = reverse("composer:new", args=["merge"])
    data = {"adapters": ids(catalog, "t5-a", "t5-b"), "merge_method": "knots_ties", "density": 0.5}
    for bad, message in [
        ("0", "greater than or equal to 0.1"),
        ("0.05", "greater than or equal to 0.1"),
        ("10.5", "less than or equal to 10"),
        ("1e308", "less than or equal to 10"),
        ("nan", "Enter a number"),
        ("inf", "Enter a number"),
        ("x", "Enter a number"),
    ]:
        r = alice_client.post(url, data | {"scaling_coef": bad})
        assert r.status_code == 400 and message in r.content.decode(), bad
    r = alice_client.post(url, data | {"disjoint": "max"})
    assert "Select a valid choice" in r.content.decode()
    assert not Job.objects.exists()
    assert (
        alice_client.post(url, data | {"scaling_coef": "2.5", "disjoint": "sum"}).status_code == 302
    )
    assert Job.objects.get().parameters == {
        "method": "knots_ties",
        "density": 0.5,
        "scaling_coef": 2.5,
        "disjoint": "sum",
    }
    page = alice_client.get(reverse("composer:detail", args=[Job.objects.get().pk]))
    assert "scaling coefficient λ 2.5" in page.content.decode()
    assert "sum of the values that agree in sign" in page.content.decode()
    # Other methods have no λ: it is not recorded for them.
    data |= {"merge_method": "ties", "scaling_coef": "2.5"}
    assert alice_client.post(url, data).status_code == 302
    assert Job.objects.latest("pk").parameters == {"method": "ties", "density": 0.5}


def test_a_user_at_the_job_limit_gets_a_clear_refusal(alice_client, alice, catalog, settings):
    settings.COMPOSER_MAX_ACTIVE_JOBS_PER_USER = 1
    Job.objects.create(owner=alice, kind=Job.Kind.LEGO)  # queued
    data = lorahub_data(catalog, "t5-a", "t5-b")
    r = alice_client.post(reverse("composer:new", args=["lorahub"]), data)
    assert r.status_code == 429 and Job.objects.count() == 1
    page = r.content.decode()
    assert "You have 1 jobs queued or running, the most allowed at once (1)" in page
    assert 'id="job-limit"' in page and "t5-a" in page  # the form comes back filled in
    # Once that job is done, the same submit goes through.
    Job.objects.update(status=Job.Status.SUCCEEDED)
    r = alice_client.post(reverse("composer:new", args=["lorahub"]), data)
    assert r.status_code == 302 and Job.objects.count() == 2


def test_merge_forms_take_one_example_set_or_one_per_adapter(alice_client, catalog):
    adapters = ids(catalog, "t5-a", "t5-b")
    lego = {"adapters": adapters, "param_reweight": "on", "output_reweight": "on"}
    r = alice_client.post(reverse("composer:new", args=["lego"]), {**lego, "examples": EXAMPLES})
    assert r.status_code == 302
    assert Job.objects.get().examples == [
        {"input": "abc", "output": "cba"},
        {"input": "hello", "output": "olleh"},
    ]
    url = reverse("composer:new", args=["merge"])
    per_task = "abc\tcba\n---  \r\nlora\tarol\nkey\tyek\n---\n"
    data = {"adapters": adapters, "merge_method": "cat", "examples": per_task}
    assert alice_client.post(url, data).status_code == 302
    assert [(e["input"], e["task"]) for e in Job.objects.latest("pk").examples] == [
        ("abc", 0),
        ("lora", 1),
        ("key", 1),
    ]


@pytest.mark.parametrize(
    "examples, message",
    [
        ("a\tb\n---\nc\td\n---\ne\tf\n", "3 sets of examples for 2 adapters"),
        ("a\tb\n---\n\n---\nc\td\n", "Examples, set 2: no examples"),
        ("a\tb\n" * 1001, "Examples: too many examples: more than 1000"),
        ("a\tb\n" * 600 + "---\n" + "a\tb\n" * 401, "more than 1000 examples in all"),
    ],
)
def test_merge_form_refuses_bad_example_sets(alice_client, catalog, examples, message):
    url = reverse("composer:new", args=["merge"])
    data = {"adapters": ids(catalog, "t5-a", "t5-b"), "merge_method": "cat"}
    r = alice_client.post(url, {**data, "examples": examples})
    assert r.status_code == 400 and message in r.content.decode()
    assert not Job.objects.exists()


def test_merge_examples_need_a_base_model_the_workers_have(alice_client, catalog):
    BaseModel.objects.update(local_path="", commit="")
    url = reverse("composer:new", args=["merge"])
    data = {"adapters": ids(catalog, "t5-a", "t5-b"), "merge_method": "cat"}
    r = alice_client.post(url, {**data, "examples": EXAMPLES})
    assert "is not available to the workers" in r.content.decode()
    assert alice_client.post(url, data).status_code == 302  # without examples it needs none


@pytest.mark.django_db(transaction=True)
def test_two_submits_at_once_cannot_both_pass_the_job_limit(alice, catalog, settings, test_broker):
    """Two submits race on PostgreSQL: both count alice's active jobs before either has
    inserted its own. The lock on alice's row makes the second count wait for the first
    submit's commit, so one of them is refused."""
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    settings.COMPOSER_MAX_ACTIVE_JOBS_PER_USER = 2
    Job.objects.create(owner=alice, kind=Job.Kind.LEGO)  # queued
    data = lorahub_data(catalog, "t5-a", "t5-b")

    def submit():
        client = Client()
        client.force_login(alice)
        return client.post(reverse("composer:new", args=["lorahub"]), data)

    responses = race(submit, submit)
    assert sorted(r.status_code for r in responses) == [302, 429]
    refused = next(r for r in responses if r.status_code == 429).content.decode()
    assert "You have 2 jobs queued or running, the most allowed at once (2)" in refused
    assert Job.objects.filter(owner=alice).count() == 2
