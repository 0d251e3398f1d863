"""The published composite's card: task, examples, parents sorted by weight as links, the
license asked for (proposed when the parents agree), lineage in the Hub API's card data."""

import pytest
from django.urls import reverse
from huggingface_hub import HfApi

from composer.forms import PublishForm
from composer.launch import job_launch
from composer.model_card import model_card
from composer.models import Job
from composer.results import result_store
from composer.summary import job_default_name
from hub.models import Adapter
from hub.services.adapters import adapter_create
from tests.jobs.screened import screened_job
from tests.jobs.test_publish import done_job  # noqa: F401 - a fixture


@pytest.fixture
def named_job(done_job):  # noqa: F811
    done_job.name = "reverse words"
    done_job.examples = [{"input": f"w{i}", "output": f"{i}w"} for i in range(7)]
    done_job.heldout = [{"input": "ab", "output": "ba"}]
    # t5-b's weight is the larger: it comes first on the card.
    done_job.result = {"weights": [-0.2, 0.7]}
    done_job.save()
    return done_job


def set_licenses(job, *licenses):
    for i, license in zip(job.inputs.all(), licenses, strict=True):
        Adapter.objects.filter(pk=i.version.adapter_id).update(license=license)


def test_license_is_proposed_when_the_parents_agree(named_job):
    set_licenses(named_job, "mit", "mit")
    assert PublishForm(job=named_job).fields["license"].initial == "mit"
    set_licenses(named_job, "mit", "apache-2.0")
    field = PublishForm(job=named_job).fields["license"]
    assert field.initial is None and "licenses differ (apache-2.0, mit)" in field.help_text


def test_published_card_and_lineage(alice_client, alice, named_job, live_server):
    r = alice_client.post(
        reverse("composer:publish", args=[named_job.pk]), {"name": "reverser", "license": "mit"}
    )
    assert r.status_code == 302
    child = Adapter.objects.get(owner=alice, name="reverser")
    assert child.license == "mit"
    card = child.description
    assert card.startswith("# reverse words") and "Task: **reverse words**" in card
    assert "7 few-shot examples (5 shown); the result is evaluated on 1 held-out example." in card
    assert "| `w4` | `4w` |" in card and "`w5`" not in card
    b, a = (
        card.index("[bob/t5-b v1](/bob/t5-b/tree/v1)"),
        card.index("[bob/t5-a v1](/bob/t5-a/tree/v1)"),
    )
    assert b < a  # sorted by weight
    assert "5 search steps with the NGOpt optimiser, seed 0" in card and '"budget"' not in card
    # Lineage through the Hub API, as huggingface_hub reads it.
    data = HfApi(endpoint=live_server.url).model_info("alice/reverser").card_data.to_dict()
    assert data["base_model"] == ["bob/t5-b", "bob/t5-a"]
    assert data["base_model_relation"] == "merge" and data["license"] == "mit"


def test_the_cards_tags_name_a_lorahub_job_once(named_job):
    card = model_card(named_job, [i.label for i in named_job.inputs.all()])
    assert 'tags: ["lorahub", "composed"]' in card.splitlines()


def test_publish_page_shows_the_proposal(alice_client, named_job):
    set_licenses(named_job, "apache-2.0", "apache-2.0")
    page = alice_client.get(named_job.get_absolute_url()).content.decode()
    assert '<option value="apache-2.0" selected>' in page
    assert "Proposed: the license of every parent." in page
    assert Job.objects.count() == 1


def test_an_automatic_name_is_no_task(alice_client, alice, done_job):  # noqa: F811
    done_job.name = "composition of t5-a + t5-b"  # what job_launch names it
    done_job.save()
    alice_client.post(reverse("composer:publish", args=[done_job.pk]), {"name": "auto"})
    card = Adapter.objects.get(owner=alice, name="auto").description
    assert card.startswith("# composition of t5-a + t5-b") and "Task:" not in card


def test_a_merges_automatic_name_is_no_task(alice, catalog):
    versions = [catalog["t5-a"].current_version, catalog["t5-b"].current_version]
    params = {"method": "ties", "density": 0.5}
    job = job_launch(owner=alice, kind=Job.Kind.MERGE, versions=versions, parameters=params)
    card = model_card(job, [i.label for i in job.inputs.all()])
    assert "\n# TIES merge of t5-a + t5-b\n" in card and "Task:" not in card


def test_a_screened_result_over_many_candidates_is_published(
    alice_client, alice, bob, catalog, toys, tmp_path
):
    """A screened search over every compatible adapter gives most of them weight 0: the
    card's base_model lists the parents that carry weight (a card may list 20), and the
    license proposed is theirs."""
    folder = toys / "adapters" / "t5-a"
    files = {f: folder / f for f in ("adapter_config.json", "adapter_model.safetensors")}
    base = catalog["t5-a"].base_model
    versions = [
        adapter_create(
            owner=bob, name=f"cand-{n:02}", files=files, base_model=base.identifier
        ).current_version
        for n in range(24)
    ]
    weights = [0.0] * 24
    weights[5], weights[17] = -0.25, 1.0
    for n in (5, 17):
        Adapter.objects.filter(pk=versions[n].adapter_id).update(license="mit")
    job = job_launch(
        owner=alice,
        kind=Job.Kind.LORAHUB,
        versions=versions,
        parameters={"budget": 40, "seed": 0, "optimizer": "NGOpt", "mode": "screen"},
        base_model=base,
    )
    job.status, job.result = Job.Status.SUCCEEDED, {"weights": weights}
    job.result_file = result_store(job, toys / "adapters" / "t5-c", tmp_path / "result.zip")
    job.save()
    assert PublishForm(job=job).fields["license"].initial == "mit"
    r = alice_client.post(reverse("composer:publish", args=[job.pk]), {"name": "screened"})
    assert r.status_code == 302, r.content.decode()
    child = Adapter.objects.get(owner=alice, name="screened")
    assert child.card_data["base_model"] == ["bob/cand-17", "bob/cand-05"]
    card = child.description
    assert (
        "[bob/cand-17 v1]" in card and "[bob/cand-05 v1]" in card and "[bob/cand-00 v1]" not in card
    )
    assert "22 other inputs had weight 0." in card
    # named after its 24 candidates when launched; its card after the 2 that carry weight
    assert job.name == "composition of cand-00 + cand-01 + cand-02 + 21 more"
    assert card.startswith("# composition of cand-17 + cand-05\n") and "Task:" not in card


def test_a_screened_result_is_titled_after_what_it_kept(alice, bob):
    job = screened_job(alice, bob, n=30, mix=(1.0,))
    labels = [i.label for i in job.inputs.all()]
    assert "\n# reverse words\n" in model_card(job, labels)  # a typed name is kept
    kept = job.result["screening"][job.result["selected"][0]]["name"]
    picked = f"\n# {kept} (picked by screening from 30 candidates)\n"
    versions = [i.version for i in job.inputs.all()]
    for automatic in ("", job_default_name(job.kind, versions, job.parameters)):
        job.name = automatic
        card = model_card(job, labels)
        assert picked in card and "Task:" not in card


def test_a_result_screened_from_500_adapters_is_published(
    alice_client, alice, bob, toys, storage_dirs, tmp_path
):
    """Its card lists the 5 adapters mixed: with a row for each of the 500 inputs (long
    LoraHub names) the card passed the 64 KiB bound and the publish was refused."""
    job = screened_job(alice, bob, n=500)
    job.result_file = result_store(job, toys / "adapters" / "t5-c", tmp_path / "result.zip")
    job.save()
    r = alice_client.post(reverse("composer:publish", args=[job.pk]), {"name": "screened"})
    assert r.status_code == 302, r.content.decode()
    card = Adapter.objects.get(owner=alice, name="screened").description
    assert card.count("](/bob/lorahub_flan_t5_large-") == 5
    assert "495 other inputs had weight 0." in card
