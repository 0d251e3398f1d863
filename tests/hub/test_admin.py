from django.contrib.auth import get_user_model
from django.urls import reverse

from hub.models import Adapter, Blob
from tests.hub.conftest import assert_swept_after_the_grace


def test_admin_pages_and_delete_frees_files(client, alice, make_adapter, media_root):
    adapter = make_adapter(alice, "managed")
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    for url in (
        reverse("admin:hub_adapter_changelist"),
        reverse("admin:hub_adapter_change", args=[adapter.pk]),
        reverse("admin:hub_adapterversion_change", args=[adapter.current_version_id]),
        reverse("admin:hub_blob_changelist"),
        reverse("admin:hub_basemodel_changelist"),
    ):
        assert client.get(url).status_code == 200, url
    response = client.post(reverse("admin:hub_adapter_delete", args=[adapter.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Adapter.objects.exists() and not Blob.objects.exists()
    assert_swept_after_the_grace(media_root, 3)  # its config, weights and README.md
