"""Publishing a result: a catalog adapter through the catalog's own upload service, with a
generated model card and lineage shown on the child's and the parents' pages."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from composer.launch import job_launch
from composer.models import Job, Lineage
from composer.results import result_store
from hub.models import Adapter
from tests.jobs.conftest import publish_toys


@pytest.fixture
def done_job(alice, catalog, toys, tmp_path):
    """A succeeded LoraHub job of alice over bob's t5-a and t5-b (its result: t5-c's files)."""
    versions = [catalog["t5-a"].current_version, catalog["t5-b"].current_version]
    job = job_launch(
        owner=alice,
        kind=Job.Kind.LORAHUB,
        versions=versions,
        parameters={"budget": 5, "seed": 0, "optimizer": "NGOpt"},
        base_model=catalog["t5-a"].base_model,
    )
    job.status, job.result = Job.Status.SUCCEEDED, {"weights": [0.3, -0.2]}
    job.result_file = result_store(job, toys / "adapters" / "t5-c", tmp_path / "result.zip")
    job.save()
    return job


def publish(client, job, **data):
    return client.post(reverse("composer:publish", args=[job.pk]), {"name": "mixed", **data})


def test_publish_creates_an_adapter_with_card_and_lineage(alice_client, alice, done_job):
    r = publish(alice_client, done_job)
    child = Adapter.objects.get(owner=alice, name="mixed")
    assert r.status_code == 302 and r["Location"] == child.get_absolute_url()
    assert "LoraHub composition" in child.description and "bob/t5-a v1" in child.description
    links = list(Lineage.objects.filter(child=child.current_version))
    assert [(link.parent_label, link.weight, link.method) for link in links] == [
        ("bob/t5-a v1", 0.3, "lorahub"),
        ("bob/t5-b v1", -0.2, "lorahub"),
    ]
    done_job.refresh_from_db()
    assert done_job.published_version == child.current_version
    assert links[0].job == done_job

    child_page = alice_client.get(child.get_absolute_url()).content.decode()
    assert 'id="lineage"' in child_page and "bob/t5-b v1" in child_page
    assert f"Open job #{done_job.pk}" in child_page
    stranger = Client()
    parent_page = stranger.get(done_job.inputs.first().version.adapter.get_absolute_url())
    assert "alice/mixed" in parent_page.content.decode()
    # Strangers see the lineage but no link to alice's private job.
    page = stranger.get(child.get_absolute_url()).content.decode()
    assert "bob/t5-a v1" in page and f"Open job #{done_job.pk}" not in page


def test_publish_twice_or_with_a_taken_name_is_refused(alice_client, alice, done_job, toys):
    publish_toys(alice, toys, ["t5-c"])
    r = publish(alice_client, done_job, name="t5-c")
    assert r.status_code == 400 and "already have an adapter named t5-c" in r.content.decode()
    assert not Lineage.objects.exists()
    assert publish(alice_client, done_job).status_code == 302
    r = publish(alice_client, done_job, name="again")
    assert "already published" in r.content.decode()
    assert Adapter.objects.filter(owner=alice).count() == 2


def test_publishing_is_a_write_within_the_quota(alice_client, alice, done_job, settings):
    settings.LORAHUB_WRITES_PER_HOUR = 0
    r = publish(alice_client, done_job)
    assert r.status_code == 400 and "the limit" in r.content.decode()
    settings.LORAHUB_WRITES_PER_HOUR = 60
    settings.LORAHUB_USER_QUOTA_BYTES = 1  # room for no result's files
    r = publish(alice_client, done_job)
    assert r.status_code == 400 and "storage quota" in r.content.decode()
    assert not Adapter.objects.filter(owner=alice).exists() and not Lineage.objects.exists()


def _model_card(page) -> str:
    return page.content.decode().split('class="model-card"', 1)[1].split("</article>", 1)[0]


def test_a_published_card_stops_naming_a_parent_that_went_private(
    alice_client, alice, bob, done_job
):
    assert publish(alice_client, done_job).status_code == 302
    child = Adapter.objects.get(owner=alice, name="mixed").get_absolute_url()
    assert "bob/t5-a" in _model_card(Client().get(child))
    Adapter.objects.filter(owner=bob, name="t5-a").update(private=True)
    for viewer in (Client(), alice_client):
        card = _model_card(viewer.get(child))
        assert "t5-a" not in card and 'href="/bob/t5-a' not in card
        assert "a private adapter" in card and "bob/t5-b" in card
    owner = Client()
    owner.force_login(bob)
    assert "bob/t5-a" in _model_card(owner.get(child))
    # The Hub API's card data names the parents that stay public only.
    info = Client().get("/api/models/alice/mixed").json()
    assert info["cardData"]["base_model"] == ["bob/t5-b"]
    listed = Client().get("/api/models", {"author": "alice", "cardData": "1"}).json()
    assert listed[0]["cardData"]["base_model"] == ["bob/t5-b"]


def test_private_children_stay_hidden_on_parent_pages(alice_client, done_job):
    publish(alice_client, done_job, private="on")
    parent_url = done_job.inputs.first().version.adapter.get_absolute_url()
    assert b"alice/mixed" in alice_client.get(parent_url).content
    assert b"alice/mixed" not in Client().get(parent_url).content


def test_unfinished_jobs_cannot_be_published(alice_client, done_job):
    Job.objects.filter(pk=done_job.pk).update(status=Job.Status.RUNNING)
    r = publish(alice_client, done_job)
    assert "Only the result of a succeeded job" in r.content.decode()
    assert not Adapter.objects.filter(name="mixed").exists()


def test_private_parents_stay_nameless_on_public_children(client, alice_client, catalog, bob):
    """A public adapter made from bob's private one names that parent only to bob."""
    parent, child = catalog["t5-a"], catalog["t5-b"]
    Adapter.objects.filter(pk=parent.pk).update(private=True)
    Lineage.objects.create(
        child=child.current_version,
        parent=parent.current_version,
        parent_label="bob/t5-a",
        position=0,
        weight=0.5,
        method="linear",
    )
    page = alice_client.get(child.get_absolute_url()).content.decode()
    assert "a private adapter" in page and "bob/t5-a" not in page
    client.force_login(bob)
    page = client.get(child.get_absolute_url()).content.decode()
    assert 'href="/bob/t5-a"' in page


def test_job_page_shows_the_held_out_outputs_escaped(alice_client, done_job):
    """The first held-out examples with the base model's and the result's outputs, side by
    side; the users' text is escaped."""
    rows = [("<script>x</script>", "tpircs", "zzz", "tpircs"), ("abc", "cba", "abc", "cbb")]
    done_job.result["evaluation"] = {
        key: {
            "n": 2,
            "loss": 1.0,
            "exact_match": 0.5,
            "predictions": [
                {"input": i, "output": o, "prediction": p, "correct": p == o}
                for i, o, *outs in rows
                for p in [outs[col]]
            ],
        }
        for col, key in enumerate(["base", "composed"])
    }
    done_job.save()
    page = alice_client.get(done_job.get_absolute_url()).content.decode()
    table = page.split('id="predictions"', 1)[1].split("</details>", 1)[0]
    assert "Outputs on the first 2 held-out examples" in table
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in table
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", table)]
    assert cells == [
        "&lt;script&gt;x&lt;/script&gt;", "tpircs", "zzz ✗", "tpircs ✓",
        "abc", "cba", "abc ✗", "cbb ✗",
    ]  # fmt: skip


def test_pages_list_the_parents_that_carry_weight_and_bound_the_rest(
    alice_client, done_job, django_assert_max_num_queries
):
    """A screened composition records every screened candidate as a parent, most at weight
    0: the child's page lists those that carry weight and counts the others; the parent's
    page does not count a weight-0 link as "made from" it; both pages stay bounded."""
    publish(alice_client, done_job)
    child = Adapter.objects.get(name="mixed").current_version
    parent = done_job.inputs.first().version
    Lineage.objects.bulk_create(
        Lineage(
            child=child,
            parent=parent,
            parent_label=f"bob/screened-{i} v1",
            position=2 + i,
            weight=0.0,
            method="lorahub",
        )
        for i in range(300)
    )
    with django_assert_max_num_queries(40):
        page = alice_client.get(child.adapter.get_absolute_url()).content.decode()
    assert "bob/t5-a v1" in page and "bob/t5-b v1" in page and "screened-0 v1" not in page
    assert "300 other screened candidates (weight 0)" in page
    with django_assert_max_num_queries(40):
        page = alice_client.get(parent.adapter.get_absolute_url()).content.decode()
    made_from = page.split('id="lineage-children"')[1].split("</section>")[0]
    assert made_from.count("alice/mixed</a>") == 1
    # many children with a weight: at most 50 listed, the rest counted
    Lineage.objects.filter(child=child, position__gte=2).update(weight=0.5)
    page = alice_client.get(parent.adapter.get_absolute_url()).content.decode()
    made_from = page.split('id="lineage-children"')[1].split("</section>")[0]
    assert made_from.count("<li>") == 50 and "and 251 more." in made_from
