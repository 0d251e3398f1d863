"""Adapter.current_r (the current version's rank, denormalised for the rank filter) follows
current_version through uploads, admin-style saves and deletes."""

from hub.models import Adapter, AdapterVersion
from hub.services.adapters import adapter_delete, adapter_upload
from tests.hub.test_browse_search import names


def files(adapter_dirs, key):
    d = adapter_dirs[key]
    return {f: d / f for f in ("adapter_config.json", "adapter_model.safetensors")}


def test_current_rank_follows_new_versions_and_the_list_filters_on_it(
    client, alice, make_adapter, adapter_dirs
):
    adapter = make_adapter(alice, "growing", key="r4")
    assert Adapter.objects.get(pk=adapter.pk).current_r == 4
    assert names(client, r="4") == ["growing"] and names(client, r="8") == []

    adapter_upload(adapter=adapter, files=files(adapter_dirs, "r8"), user=alice)
    assert Adapter.objects.get(pk=adapter.pk).current_r == 8
    assert names(client, r="8") == ["growing"] and names(client, r="4") == []


def test_current_rank_follows_a_saved_current_version(client, alice, make_adapter, adapter_dirs):
    adapter = make_adapter(alice, "rolled-back", key="r4")
    adapter_upload(adapter=adapter, files=files(adapter_dirs, "r8"), user=alice)
    adapter = Adapter.objects.get(pk=adapter.pk)
    # As the admin does: the whole row saved with another current version.
    adapter.current_version = AdapterVersion.objects.get(adapter=adapter, number=1)
    adapter.save()
    assert Adapter.objects.get(pk=adapter.pk).current_r == 4
    assert names(client, r="4") == ["rolled-back"] and names(client, r="8") == []

    adapter.current_version = None
    adapter.save(update_fields=["current_version"])
    assert Adapter.objects.get(pk=adapter.pk).current_r is None


def test_deleted_adapters_leave_the_rank_filter(client, alice, make_adapter):
    make_adapter(alice, "kept", key="r8")
    doomed = make_adapter(alice, "doomed", key="r8")
    assert names(client, r="8") == ["doomed", "kept"]
    adapter_delete(adapter=doomed)
    assert names(client, r="8") == ["kept"]
