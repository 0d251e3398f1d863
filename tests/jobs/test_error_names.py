"""A failed job's message names its inputs as `owner/name vN`, never a folder or a hash."""

import shutil

import pytest

from composer.engine.adapters import AdapterError, load_adapters
from composer.engine.compat import IncompatibleAdapters, check_compatible
from composer.inputs import input_dir, inputs_named, inputs_scratch
from composer.models import Job, JobInput


@pytest.fixture
def job(alice):
    job = Job.objects.create(owner=alice, kind=Job.Kind.MERGE)
    for n, label in enumerate(["bob/t5-a v1", "bob/t5-qk v3"]):
        JobInput.objects.create(job=job, position=n, label=label)
    return job


def engine_error(call) -> str:
    with pytest.raises((AdapterError, IncompatibleAdapters)) as info:
        call()
    return str(info.value)


def test_engine_messages_name_the_inputs(job, toys, tmp_path):
    scratch = inputs_scratch(tmp_path)
    dirs = [input_dir(scratch, n) for n in range(2)]
    for d, name in zip(dirs, ("t5-a", "t5-qk"), strict=True):
        shutil.copytree(toys / "adapters" / name, d)

    # Adapters called by their folder's name: "input-0 targets ... input-1 ...".
    message = engine_error(lambda: check_compatible(load_adapters(dirs)))
    assert "input-" in message
    named = inputs_named(message, job, scratch)
    assert "bob/t5-a v1" in named and "bob/t5-qk v3" in named
    assert "input-" not in named and str(tmp_path) not in named

    # A folder by its full path.
    (dirs[1] / "adapter_config.json").unlink()
    message = engine_error(lambda: load_adapters(dirs))
    assert str(dirs[1]) in message
    named = inputs_named(message, job, scratch)
    assert named.startswith("bob/t5-qk v3: no adapter_config.json"), named
