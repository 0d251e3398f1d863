"""The published composite's card: task, examples, parents sorted by weight as links, the
license asked for (proposed when the parents agree), lineage in the Hub API's card data."""

import pytest
from django.urls import reverse
from huggingface_hub import HfApi

from composer.forms import PublishForm
from composer.models import Job
from hub.models import Adapter
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
