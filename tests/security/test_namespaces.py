"""Reserved names and ids that could pass for a base model. `meta-llama`, `huggingface`,
`lorahub`, `security` and `admin1` were free to sign up, and an adapter named like a base
model loaded, through transformers with HF_ENDPOINT set to this site, as the real base
model with the adapter attached."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from hfapi.tokens import token_create
from hub.models import BaseModel

SIGNUP_PASSWORD = "a-Long-pass-word-42"


def signup(username: str):
    data = {"username": username, "password1": SIGNUP_PASSWORD, "password2": SIGNUP_PASSWORD}
    return Client(REMOTE_ADDR=f"10.3.{len(username)}.{ord(username[-1])}").post(
        "/accounts/signup/", data
    )


@pytest.mark.parametrize(
    "name",
    ["meta-llama", "huggingface", "lorahub", "security", "admin1", "Admin-2", "Meta-Llama",
     "lorahub-team", "mistralai", "acme-ai", "meta_llama", "metallama", "hugging_face",
     "l0rahub", "TinyLlama", "mistral", "acme_a1"],
)  # fmt: skip
def test_reserved_names_cannot_be_signed_up(db, name):
    BaseModel.objects.create(identifier="acme-ai/acme-7b", commit="a" * 40)  # registered
    response = signup(name)
    assert response.status_code == 400 and "reserved" in response.content.decode()
    assert not get_user_model().objects.filter(username__iexact=name).exists()


def test_ordinary_names_still_sign_up(db):
    assert signup("adminton").status_code == 302  # a word, not admin and digits
    assert signup("llama-fan").status_code == 302


def _served(client, repo_id: str) -> list[int]:
    return [
        client.get(f"/api/models/{repo_id}").status_code,
        client.get(f"/{repo_id}/resolve/main/adapter_config.json").status_code,
    ]


def test_an_adapter_that_could_pass_for_a_base_model_is_never_served(db, make_adapter, bob):
    # An account and adapters made before names were reserved.
    squatter = get_user_model().objects.create_user("squatter")
    make_adapter(squatter, "Llama-3.1-8B")
    get_user_model().objects.filter(pk=squatter.pk).update(username="meta-llama")
    make_adapter(bob, "tiny-base")
    make_adapter(bob, "honest")
    BaseModel.objects.create(identifier="bob/tiny-base")
    client = Client()
    assert _served(client, "meta-llama/Llama-3.1-8B") == [404, 404]
    assert _served(client, "bob/tiny-base") == [404, 404]
    assert _served(client, "bob/honest") == [200, 200]


def test_no_adapter_is_created_at_a_base_models_id(db, make_adapter, bob, client):
    BaseModel.objects.create(identifier="bob/t5-base")
    with pytest.raises(ValidationError, match="base model's identifier"):
        make_adapter(bob, "t5-base")
    squatter = get_user_model().objects.create_user("huggingface")
    with pytest.raises(ValidationError, match="reserved"):
        make_adapter(squatter, "anything")
    token = token_create(user=squatter, name="w", scope="write")[1]
    response = client.post(
        "/api/repos/create",
        '{"name": "gpt2"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 403 and "reserved" in response.json()["error"]


def test_no_base_model_is_named_after_an_adapter(db, make_adapter, alice, bob):
    make_adapter(bob, "honest")
    with pytest.raises(ValidationError, match="is an adapter on this site"):
        make_adapter(alice, "mine", base_model="bob/honest")
    assert not BaseModel.objects.filter(identifier="bob/honest").exists()
    assert _served(Client(), "bob/honest") == [200, 200]
