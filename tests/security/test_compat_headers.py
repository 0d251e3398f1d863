"""Job forms check compatibility from safetensors headers: two 64 MiB adapters in a refused
merge form cost a few KB of reads and leave nothing behind; an adapter whose matrices do
not fit its registered base model is refused at upload and at submit."""

import psutil
import torch
from django.urls import reverse
from safetensors.torch import save_file

from hub.models import BaseModel
from hub.services.adapters import adapter_create
from tests.hub.test_streaming import write_big_adapter

MIB = 1024 * 1024


def test_refused_merge_form_reads_headers_only(alice_client, alice, tmp_path, settings):
    settings.COMPOSER_WORK_DIR = tmp_path / "work"
    rank = 128 * 1024  # A and B 32 MiB each: 64 MiB a file
    ids = []
    for module in ("q", "v"):  # different modules: they cannot be merged
        folder = write_big_adapter(tmp_path / module, rank, module=module)
        files = {p.name: p for p in folder.iterdir()}
        ids.append(adapter_create(owner=alice, name=f"big-{module}", files=files).pk)
    url, data = reverse("composer:new", args=["merge"]), {"adapters": ids, "merge_method": "cat"}
    alice_client.post(url, data)  # the first one also loads templates and modules
    before = psutil.Process().io_counters().read_chars
    response = alice_client.post(url, data)
    read = psutil.Process().io_counters().read_chars - before
    assert response.status_code == 400
    assert "cannot be combined" in response.content.decode()
    assert read < 2 * MIB, f"{read / MIB:.1f} MiB read for a refused form"  # was 128 MiB
    work = tmp_path / "work"
    assert not work.exists() or not any(work.rglob("*.safetensors"))  # no copies left


def _wide_adapter(folder, d: int):
    """r=4 on the tiny T5's encoder q, with d_in = d_out = d (the model's is 64)."""
    folder.mkdir()
    prefix = "base_model.model.encoder.block.0.layer.0.SelfAttention.q"
    save_file(
        {
            f"{prefix}.lora_A.weight": torch.zeros(4, d),
            f"{prefix}.lora_B.weight": torch.zeros(d, 4),
        },
        folder / "adapter_model.safetensors",
    )
    (folder / "adapter_config.json").write_text(
        '{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q"], '
        '"base_model_name_or_path": "lorahub/tiny-t5", "task_type": "SEQ_2_SEQ_LM"}'
    )
    return {p.name: p for p in folder.iterdir()}


def test_adapter_that_does_not_fit_the_base_model_is_refused_at_upload(
    alice_client, alice, tiny_t5, tmp_path
):
    BaseModel.objects.create(identifier="lorahub/tiny-t5", local_path=str(tiny_t5))
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = _wide_adapter(tmp_path / "wide", 128)
    response = alice_client.post(
        reverse("hub:adapter_new"),
        {
            "name": "wide",
            "files": [SimpleUploadedFile(n, p.read_bytes()) for n, p in files.items()],
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "does not fit the base model lorahub/tiny-t5" in page
    assert "the base model has (d_out, d_in) = (64, 64)" in page and "(128, 128)" in page
    # The same adapter at the model's width is accepted.
    adapter_create(owner=alice, name="fits", files=_wide_adapter(tmp_path / "fits", 64))


def test_adapter_that_does_not_fit_the_base_model_is_refused_at_submit(
    alice_client, alice, tiny_t5, tmp_path
):
    """Adapters uploaded before the base model's files were known reach the form."""
    ids = [
        adapter_create(
            owner=alice, name=f"wide-{i}", files=_wide_adapter(tmp_path / str(i), 128)
        ).pk
        for i in range(2)
    ]
    BaseModel.objects.filter(identifier="lorahub/tiny-t5").update(local_path=str(tiny_t5))
    response = alice_client.post(
        reverse("composer:new", args=["merge"]), {"adapters": ids, "merge_method": "cat"}
    )
    assert response.status_code == 400
    assert "the base model has (d_out, d_in) = (64, 64)" in response.content.decode()
