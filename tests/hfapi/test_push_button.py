"""The adapter page offers "Push to Hugging Face" to its owner only."""

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
