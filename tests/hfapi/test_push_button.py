"""The adapter page offers "Push to Hugging Face" to its owner only; the push and import
forms answer 400 with the reason when they refuse their input."""

from hfapi.models import Transfer
from tests.conftest import PASSWORD

PUSH = 'href="/alice/sql-lora/push-to-hub"'


def test_owner_sees_push_button(alice_client, sql_lora):
    page = alice_client.get("/alice/sql-lora").content.decode()
    assert PUSH in page


def test_others_do_not_see_push_button_nor_push(client, sql_lora, bob):
    assert PUSH not in client.get("/alice/sql-lora").content.decode()
    client.login(username="bob", password=PASSWORD)
    assert PUSH not in client.get("/alice/sql-lora").content.decode()
    response = client.post("/alice/sql-lora/push-to-hub", {"repo_id": "bob/x", "token": "hf_x"})
    assert response.status_code in (403, 404)


def test_refused_push_and_import_forms_are_400_and_say_why(alice_client, sql_lora):
    push = "/alice/sql-lora/push-to-hub"
    for data, message in (
        ({"repo_id": "not an id", "token": "hf_x"}, "is not a repository id"),
        ({"repo_id": "alice/x"}, "This field is required"),
    ):
        response = alice_client.post(push, data)
        assert response.status_code == 400 and message in response.content.decode(), data
    response = alice_client.post("/new/from-hugging-face/", {"source": "not an id"})
    assert response.status_code == 400 and "is not a repository id" in response.content.decode()
    assert not Transfer.objects.exists()
