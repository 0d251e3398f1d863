"""Request bodies: nothing is read before authentication, and every body is capped.

Against gunicorn with the shipped settings: each request announces a 400 MB body and sends
none of it, so a server that read (or spooled) the body first would never answer.
"""

import pytest

from tests.security import gunicorn_server

BIG = 400_000_000
MULTIPART = b"multipart/form-data; boundary=xyz"


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    process, port = gunicorn_server.start(gunicorn_server.test_database_url(), tmp_path)
    yield port, tmp_path
    process.terminate()
    process.wait(timeout=30)


def head(path: str, length: int = BIG, cookie: str = "") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {MULTIPART.decode()}",
        f"Content-Length: {length}",
        "Connection: close",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_anonymous_upload_is_refused_before_its_body(server, transactional_db, alice, make_adapter):
    port, var = server
    make_adapter(alice, "target")
    for path in ("/new/", "/alice/target/upload"):
        status, answer = gunicorn_server.raw_request(port, head(path))
        assert status == 302 and b"/accounts/login/?next=" in answer, answer[:300]
    assert not any((var / "tmp").iterdir())  # nothing spooled


def test_someone_elses_adapter_refuses_the_upload_before_its_body(
    server, transactional_db, client, alice, bob, make_adapter
):
    port, _ = server
    make_adapter(alice, "target")
    client.force_login(bob)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    status, _ = gunicorn_server.raw_request(port, head("/alice/target/upload", cookie=cookie))
    assert status == 403


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/", "/api/repos/create"])
def test_bodies_of_pages_without_files_are_capped_before_reading(server, path):
    port, var = server
    status, answer = gunicorn_server.raw_request(port, head(path))
    assert status == 413 and b"accepts at most 1.0" in answer
    assert not any((var / "tmp").iterdir())
