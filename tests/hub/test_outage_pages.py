"""A request that meets the database away (nothing listens where it was) answers 503 with
a message, a page on the site and JSON on the Hub API, never a 500."""

import pytest
from django.db import connection
from django.test import Client

from tests.jobs.redis_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_requests_while_the_database_is_away_answer_503(alice):
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = free_port()  # the database is gone from there
    try:
        page = client.get("/")
        api = client.get("/api/models/alice/anything")
        upload = client.post("/new/", {"name": "x"})
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved
    assert page.status_code == 503, page.content.decode()[-500:]
    assert "The database is briefly unreachable" in page.content.decode()
    assert page["Retry-After"]
    assert api.status_code == 503 and "database" in api.json()["error"]
    assert upload.status_code == 503
