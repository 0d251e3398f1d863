"""What private adapters must not reveal: their base model's page."""

from django.urls import reverse


def test_base_model_of_private_adapters_only_is_404(client, alice, bob, make_adapter):
    make_adapter(alice, "secret", private=True, base_model="acme/hidden-base")
    url = reverse("hub:base_model_detail", args=["acme/hidden-base"])
    assert client.get(url).status_code == 404
    client.force_login(bob)
    assert client.get(url).status_code == 404
    client.force_login(alice)  # the owner sees it
    assert client.get(url).status_code == 200
    make_adapter(bob, "public", base_model="acme/hidden-base")  # now a public adapter uses it
    client.logout()
    assert client.get(url).status_code == 200
