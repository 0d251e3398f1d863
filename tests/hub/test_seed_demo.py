"""seed_demo registers the trained demo suite (built once per machine, then cached)."""

import html
import io
import re
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from composer.engine import synthetic
from composer.engine.examples import parse_examples
from composer.engine.run import run_lorahub
from hub.demo import FEATURED, adapter_name, demo_suite, fewshot_sets
from hub.models import Adapter, BaseModel
from hub.services.card_file import front_matter_of
from hub.services.stored_reads import blob_reader


@pytest.fixture(scope="module")
def suite():
    return demo_suite()


@pytest.mark.slow
def test_seed_demo_is_idempotent_and_registers_the_trained_suite(
    db, settings, client, tmp_path, suite
):
    settings.LORAHUB_DEMO_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert f"{len(suite.train_tasks)} adapter(s) added" in out.getvalue()
    call_command("seed_demo", stdout=out)
    assert "0 adapter(s) added" in out.getvalue()

    assert authenticate(username="demo", password="demo-password") is not None
    demo = Adapter.objects.filter(owner__username="demo")
    assert sorted(demo.values_list("name", flat=True)) == sorted(
        adapter_name(t) for t in suite.train_tasks
    )
    base = BaseModel.objects.get()
    assert Path(base.local_path) == suite.base_dir
    assert Path(base.local_path, "config.json").exists()
    assert base.commit and base.files.filter(filename="model.safetensors").exists()
    assert {a.base_model_id for a in demo} == {base.pk}

    # Each adapter's card says what its task does and shows real examples of it.
    reverse = demo.get(name="reverse-lower")
    assert "reverses the string" in reverse.description
    ex = suite.examples("reverse@lower", 4, seed=1)[0]
    raw = ex.input.removesuffix(suite.info["suffix"])
    assert f"| `{ex.input}` | `{raw[::-1]}` |" in reverse.description
    assert {"demo", "reverse", "lower"} <= set(reverse.tags.values_list("name", flat=True))
    # Its README.md carries the front matter its fields say (ModelCard.load reads it).
    readme = reverse.current_version.files.get(filename="README.md").blob
    with blob_reader(readme) as fh:
        data = front_matter_of(fh.read().decode())
    assert data["license"] == "apache-2.0" and data["base_model"] == base.identifier
    assert data["pipeline_tag"] == reverse.task and "reverse" in data["tags"]

    page = client.get("/adapters/").content.decode()
    assert all(f">{a.name}<" in page for a in demo)
    page = client.get(reverse.get_absolute_url()).content.decode()
    assert "reverses the string" in page
    assert f'href="{base.get_absolute_url()}"' in page


@pytest.mark.slow
def test_demo_fewshot_examples_are_ready_to_paste_and_correct(
    db, settings, client, tmp_path, suite
):
    settings.LORAHUB_DEMO_DIR = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    base = BaseModel.objects.get()
    page = client.get(base.get_absolute_url()).content.decode()

    # One link opens the LoraHub form with every demo adapter ticked.
    href = html.unescape(re.search(r'href="(/jobs/new/lorahub/\?[^"]+)"', page).group(1))
    client.login(username="demo", password="demo-password")
    form = client.get(href).content.decode()
    ticked = re.findall(r'<input[^>]*value="(\d+)"[^>]*checked', form)
    assert sorted(map(int, ticked)) == sorted(Adapter.objects.values_list("pk", flat=True))
    blocks = re.findall(r"<pre><code>(.*?)</code></pre>", page, re.DOTALL)
    assert len(blocks) == 2 * len(FEATURED)  # few-shot and held-out examples per task
    for i, task in enumerate(FEATURED):
        t = synthetic.get_task(task)
        shots = parse_examples(html.unescape(blocks[2 * i]))
        heldout = parse_examples(html.unescape(blocks[2 * i + 1]))
        assert len(shots) >= 3 and len(heldout) >= 10
        assert not {e.input for e in shots} & {e.input for e in heldout}
        raw = [e.input.removesuffix(suite.info["suffix"]) for e in shots + heldout]
        assert [e.output for e in shots + heldout] == [t.apply(s) for s in raw], task
        name = adapter_name(task)
        assert parse_examples((tmp_path / "fewshot" / f"{name}.jsonl").read_text()) == shots

    # Each task's own link also fills in its examples.
    links = re.findall(r'href="(/jobs/new/lorahub/\?[^"]+)"[^>]*>Compose for this task<', page)
    assert len(links) == len(FEATURED)
    for link, s in zip(links, fewshot_sets(suite), strict=True):
        form = client.get(html.unescape(link)).content.decode()
        areas = dict(re.findall(r'<textarea name="(\w+)"[^>]*>(.*?)</textarea>', form, re.DOTALL))
        assert parse_examples(html.unescape(areas["examples"])) == s.shots
        assert parse_examples(html.unescape(areas["heldout"])) == s.heldout
        assert len(re.findall(r'<input[^>]*value="(\d+)"[^>]*checked', form)) == len(ticked)


@pytest.mark.slow
def test_demo_adapters_compose_for_the_featured_tasks(suite, tmp_path):
    """LoraHub with the job's defaults on a featured task's few-shot examples does the task
    on its held-out examples, which the base model does not."""
    adapters = [suite.adapters[t] for t in suite.train_tasks]
    for s in fewshot_sets(suite)[:2]:
        out = tmp_path / adapter_name(s.task)
        res = run_lorahub(suite.base_dir, adapters, s.shots, out, heldout=s.heldout)
        assert res["evaluation"]["base"]["exact_match"] <= 0.1, s.task
        assert res["evaluation"]["composed"]["exact_match"] >= 0.8, s.task
        top = max(range(len(adapters)), key=lambda i: abs(res["weights"][i]))
        assert adapter_name(suite.train_tasks[top]) in s.adapters, s.task
