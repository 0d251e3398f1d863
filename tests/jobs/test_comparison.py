"""A LoraHub job's page and published card compare the result with the obvious choices."""

from django.urls import reverse

from composer.launch import job_launch
from composer.model_card import model_card
from composer.models import Job

ROWS = [
    {"key": "base", "name": "base model", "loss": 3.2, "exact_match": 0.0},
    {
        "key": "uniform",
        "name": "uniform average of the 2 candidates",
        "loss": 3.0,
        "exact_match": 0.0,
    },
    {
        "key": "best_single",
        "name": "best single candidate on the examples: t5-a",
        "loss": 0.9,
        "exact_match": 0.5,
    },
    {"key": "result", "name": "this result", "loss": 0.7, "exact_match": 0.75},
]


EVALUATION = {
    "base": {"n": 4, "loss": 3.2, "exact_match": 0.0, "predictions": []},
    "composed": {
        "n": 4,
        "loss": 0.7,
        "exact_match": 0.75,
        "predictions": [{"input": "abc", "output": "cba", "prediction": "cba", "correct": True}],
    },
}


def finished(owner, catalog, on: str) -> Job:
    versions = [catalog["t5-a"].current_version, catalog["t5-b"].current_version]
    job = job_launch(
        owner=owner,
        kind=Job.Kind.LORAHUB,
        versions=versions,
        parameters={"budget": 5, "seed": 0, "optimizer": "NGOpt", "mode": "screen"},
        base_model=catalog["t5-a"].base_model,
    )
    job.status = Job.Status.SUCCEEDED
    job.result = {
        "weights": [1.0, 0.0],
        "comparison": {"on": on, "n": 4, "rows": ROWS},
        "evaluation": EVALUATION,
    }
    job.save()
    return job


def test_the_job_page_shows_the_comparison(alice_client, alice, catalog):
    job = finished(alice, catalog, "heldout")
    page = alice_client.get(reverse("composer:detail", args=[job.pk])).content.decode()
    table = page[
        page.index('id="comparison"') : page.index("</table>", page.index('id="comparison"'))
    ]
    for row in ROWS:
        assert row["name"] in table and f'data-key="{row["key"]}"' in table
    assert "0.750" in table and "On the 4 held-out examples" in page
    # The older held-out table would repeat the base and result rows: it is left out,
    # the result's outputs stay.
    assert 'id="evaluation"' not in page and "Held-out evaluation" not in page
    assert 'id="predictions"' in page
    card = model_card(job, ["bob/t5-a v1", "bob/t5-b v1"])
    assert "## Evaluation on 4 held-out examples" in card
    assert "| best single candidate on the examples: t5-a | 0.500 | 0.9000 |" in card


def test_without_held_out_examples_the_scores_are_labelled_few_shot(alice_client, alice, catalog):
    job = finished(alice, catalog, "examples")
    page = alice_client.get(reverse("composer:detail", args=[job.pk])).content.decode()
    assert 'data-on="examples"' in page and "these scores flatter the result" in page
    card = model_card(job, ["bob/t5-a v1", "bob/t5-b v1"])
    assert "## Evaluation on the 4 few-shot examples" in card
    assert "these are the examples the search used" in card


def test_a_job_without_the_comparison_keeps_its_held_out_table(alice_client, alice, catalog):
    job = finished(alice, catalog, "heldout")
    job.result = {"weights": [1.0, 0.0], "evaluation": EVALUATION}
    job.save()
    page = alice_client.get(reverse("composer:detail", args=[job.pk])).content.decode()
    assert 'id="comparison"' not in page
    table = page[
        page.index('id="evaluation"') : page.index("</table>", page.index('id="evaluation"'))
    ]
    assert "Base model" in table and "Result" in table and "0.750" in table
    assert 'id="predictions"' in page
