"""Merge weights and densities that are not finite numbers are refused at the form: such a
job used to stay "running", be run again, then fail as out of memory."""

import pytest
from django.urls import reverse

from composer.models import Job


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e400"])
def test_non_finite_merge_weight_is_refused(alice_client, alice, make_adapter, value):
    a, b = make_adapter(alice, "a"), make_adapter(alice, "b")
    data = {"adapters": [a.pk, b.pk], "merge_method": "linear"}
    data |= {f"weight_{a.pk}": value, f"weight_{b.pk}": "0.5"}
    response = alice_client.post(reverse("composer:new", args=["merge"]), data)
    assert response.status_code == 400 and "Enter a number." in response.content.decode()
    assert not Job.objects.exists()


def test_non_finite_density_is_refused(alice_client, alice, make_adapter):
    a, b = make_adapter(alice, "a"), make_adapter(alice, "b")
    data = {"adapters": [a.pk, b.pk], "merge_method": "ties", "density": "nan"}
    response = alice_client.post(reverse("composer:new", args=["merge"]), data)
    assert response.status_code == 400 and "Enter a number." in response.content.decode()
    assert not Job.objects.exists()
