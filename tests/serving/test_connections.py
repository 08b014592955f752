"""What must keep working now that requests are read whole before a thread runs them: keep-alive,
pipelined requests, chunked uploads, ``Expect: 100-continue``, bodies too big to keep in memory; and
gunicorn's control socket staying off."""

import http.client
import json

import pytest
import requests

from tests.serving.clients import connect, read_answer, request_bytes
from tests.support import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(server):
    requests.post(f"{server.url}/api/models", json={"model_name": "gpt2"}, timeout=5)
    return server


def notes(server) -> str | None:
    return requests.get(f"{server.url}/api/models/gpt2", timeout=5).json()["compatibility_notes"]


def test_keep_alive_serves_many_requests_on_one_connection(base):
    conn = http.client.HTTPConnection("127.0.0.1", base.port, timeout=5)
    conn.connect()
    first = conn.sock
    for i in range(20):
        if i % 2:
            conn.request("GET", "/api/models/gpt2")
        else:
            conn.request("PATCH", "/api/models/gpt2/config", body=json.dumps({"compatibility_notes": f"kept {i}"}),
                         headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert response.getheader("Connection") == "keep-alive"
        assert conn.sock is first  # never reconnected
    conn.close()
    assert notes(base) == "kept 18"


def test_pipelined_requests_are_answered_in_order(base):
    patch = json.dumps({"compatibility_notes": "pipelined"}).encode()
    with connect(base.port) as sock:
        sock.sendall(request_bytes("GET", "/api/models/gpt2") + request_bytes("PATCH", "/api/models/gpt2/config", patch)
                     + request_bytes("GET", "/api/models/nope") + request_bytes("GET", "/api/models/gpt2"))
        buffered = bytearray()
        answers = [read_answer(sock, buffered) for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 404, 200]
    assert answers[3].json()["compatibility_notes"] == "pipelined"


def test_a_chunked_upload_with_extensions_and_trailers_is_applied(base):
    document = json.dumps({"compatibility_notes": "sent in chunks"}).encode()
    chunks = b"".join(b"%x;piece=%d\r\n%s\r\n" % (len(document[i:i + 7]), i, document[i:i + 7])
                      for i in range(0, len(document), 7))
    with connect(base.port) as sock:
        sock.sendall(request_bytes("PATCH", "/api/models/gpt2/config", headers="Transfer-Encoding: chunked\r\n")
                     .replace(b"Content-Length: 0\r\n", b"") + chunks + b"0\r\nX-Checksum: none\r\n\r\n")
        answer = read_answer(sock)
    assert answer.status == 200
    assert answer.json()["compatibility_notes"] == "sent in chunks"


def test_expect_100_continue_is_answered_before_the_body(base):
    document = json.dumps({"compatibility_notes": "after 100"}).encode()
    head = request_bytes("PATCH", "/api/models/gpt2/config", document, "Expect: 100-continue\r\n")[:-len(document)]
    with connect(base.port) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(document)
        answer = read_answer(sock)
    assert answer.status == 200  # and only one 100 Continue came before it
    assert answer.json()["compatibility_notes"] == "after 100"


def test_an_import_bigger_than_memory_buffering_still_arrives_whole(base):
    exported = requests.get(f"{base.url}/api/export", timeout=5).content
    padded = exported + b" " * (3 * 1024 * 1024)  # past the 1 MiB kept in memory: spooled to a file
    answer = requests.post(f"{base.url}/api/import?dry_run=true", data=padded,
                           headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"]


def test_serve_creates_no_control_socket_in_home(tmp_path):
    home = tmp_path / "user-home"
    home.mkdir()
    # No XDG_RUNTIME_DIR: gunicorn's default control socket would then be ~/.gunicorn/gunicorn.ctl.
    server = LiveServer(tmp_path / "data", env={"HOME": str(home), "XDG_RUNTIME_DIR": ""})
    server.start()
    try:
        assert requests.get(f"{server.url}/api/models", timeout=5).status_code == 200
    finally:
        server.stop()
    assert not (home / ".gunicorn").exists()
    assert "gunicorn.ctl" not in server.log
