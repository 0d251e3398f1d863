"""Base models: the list with counts of visible adapters, and the list page's choices."""

import re

from django.urls import reverse

from hub.models import BaseModel


def rows(client) -> list[tuple[str, int]]:
    page = client.get(reverse("hub:base_model_list")).content.decode()
    return [
        (name, int(n))
        for name, n in re.findall(
            r'<tr><td><a href="[^"]+">([^<]+)</a></td><td>[^<]*</td><td>(\d+)</td>', page
        )
    ]


def test_counts_are_of_visible_adapters_most_used_first(client, alice, bob, make_adapter):
    make_adapter(alice, "a1", base_model="org/small")
    make_adapter(alice, "a2", base_model="org/big")
    make_adapter(bob, "b1", base_model="org/big")
    make_adapter(bob, "hidden", base_model="org/secret-base", private=True)
    BaseModel.objects.create(identifier="org/unused")
    assert rows(client) == [("org/big", 2), ("org/small", 1)]
    client.force_login(bob)
    assert rows(client) == [("org/big", 2), ("org/secret-base", 1), ("org/small", 1)]
    # The list's filter choices: base models with visible adapters, by name; their ranks.
    page = client.get(reverse("hub:adapter_list")).content.decode()
    choices = re.search(r'<select id="base" name="base">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r"<option >([^<]+)</option>", choices) == [
        "org/big",
        "org/secret-base",
        "org/small",
    ]
    ranks = re.search(r'<select id="r" name="r">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="(\d+)"', ranks) == ["4"]
