"""Download counts: at most once per client, file and day, whoever asks how often."""

from django.test import Client
from django.urls import reverse

from hub.models import Adapter


def _get(client, adapter, filename="adapter_model.safetensors", **extra):
    url = reverse("hub:adapter_resolve", args=["alice", adapter.name, "main", filename])
    response = client.get(url, **extra)
    assert response.status_code == 200
    b"".join(response.streaming_content) if response.streaming else response.content


def test_repeated_anonymous_downloads_count_once(alice, make_adapter, settings):
    adapter = make_adapter(alice, "popular")
    client = Client()
    for _ in range(20):
        _get(client, adapter)
    assert Adapter.objects.get(pk=adapter.pk).downloads == 1
    # Another client counts; the zip is another file.
    _get(Client(REMOTE_ADDR="10.0.0.2"), adapter)
    client.get(reverse("hub:adapter_archive", args=["alice", "popular", "main"]))
    assert Adapter.objects.get(pk=adapter.pk).downloads == 3


def test_forwarded_addresses_are_trusted_only_behind_a_proxy(alice, make_adapter, settings):
    adapter = make_adapter(alice, "proxied")
    for i in range(5):  # a client varying X-Forwarded-For without a proxy in front
        _get(Client(), adapter, HTTP_X_FORWARDED_FOR=f"10.1.0.{i}")
    assert Adapter.objects.get(pk=adapter.pk).downloads == 1
    settings.LORAHUB_PROXY_HOPS = 1  # behind nginx: the address nginx appended counts
    for i in range(3):
        _get(Client(), adapter, HTTP_X_FORWARDED_FOR=f"6.6.6.6, 10.2.0.{i}")
    _get(Client(), adapter, HTTP_X_FORWARDED_FOR="7.7.7.7, 10.2.0.0")  # spoofed first hop
    assert Adapter.objects.get(pk=adapter.pk).downloads == 4
