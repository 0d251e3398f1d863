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


def _words():
    from hub.models import SearchWord

    return dict(SearchWord.objects.values_list("word", "adapters"))


def test_typo_words_leave_with_the_adapter_going_private(alice, make_adapter):
    from hub.services.adapters import adapter_update

    adapter = make_adapter(alice, "okapi-tagger", description="Counts okapis in photographs.")
    assert _words()["photographs"] == 1
    adapter_update(
        adapter=adapter, description=adapter.description, task="", license="", private=True, tags=[]
    )
    assert "photographs" not in _words() and "okapi" not in _words()
    adapter_update(
        adapter=adapter,
        description=adapter.description,
        task="",
        license="",
        private=False,
        tags=[],
    )
    assert _words()["photographs"] == 1


def test_typo_words_leave_with_an_edited_card_unless_another_adapter_uses_them(
    alice, bob, make_adapter
):
    from hub.services.adapters import adapter_update

    adapter = make_adapter(alice, "one", description="Translates gibberish and lorem.")
    make_adapter(bob, "two", description="More lorem.")
    assert _words()["lorem"] == 2
    adapter_update(
        adapter=adapter, description="Now about kites.", task="", license="", private=False, tags=[]
    )
    words = _words()
    assert "gibberish" not in words and words["lorem"] == 1 and words["kites"] == 1


def test_typo_words_leave_with_a_deleted_adapter(client, alice, make_adapter):
    from hub.services.adapters import adapter_delete

    adapter = make_adapter(alice, "narwhal-counter", description="Counts narwhals.")
    assert "narwhals" in _words()
    adapter_delete(adapter=adapter)
    assert "narwhals" not in _words() and "narwhal" not in _words()
    page = client.get(reverse("hub:adapter_list"), {"q": "narwhal"}).content.decode()
    assert "showing results for" not in page and "narwhal-counter" not in page
