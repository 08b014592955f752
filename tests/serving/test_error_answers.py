"""Errors answered below the app, by gunicorn's parser or by the request assembler, over real sockets:
the API's JSON error shape under /api/, a small HTML page elsewhere, and the connection closed.
(408 is in test_slow_clients: it takes the head and body deadlines to happen.)"""

import pytest

from modelhub.security import SECURITY_HEADERS
from tests.serving.clients import exchange

pytestmark = pytest.mark.slow

HOST = "Host: 127.0.0.1\r\n"
LONG_QUERY = "q=" + "x" * 9000


def raw(request_line: str, headers: str = "", body: bytes = b"") -> bytes:
    return f"{request_line}\r\n{HOST}{headers}\r\n".encode("latin-1") + body


def assert_promised_headers(answer) -> None:
    """What the OpenAPI document promises on every response: the security headers and an ETag."""
    assert {name: answer.headers[name.lower()] for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert answer.headers["etag"].startswith('"') and answer.headers["etag"].endswith('"')


def many_fields(count: int, size: int) -> str:
    return "".join(f"X-Field-{i}: {'v' * size}\r\n" for i in range(count))


# (what, request for path PATH, status, message start); each is sent for /api/... and for /.
CASES = [
    ("request line over the limit (assembler)", lambda p: raw(f"GET {p}?{LONG_QUERY} HTTP/1.1"), 414,
     "The request line is longer than"),
    ("one header field over 8,190 bytes (gunicorn)", lambda p: raw(f"GET {p} HTTP/1.1", f"X-Big: {'y' * 9000}\r\n"),
     431, "The request's header fields are too large"),
    ("more than 100 header fields (gunicorn)", lambda p: raw(f"GET {p} HTTP/1.1", many_fields(120, 10)), 431,
     "The request's header fields are too large"),
    ("a head over 64 KiB (assembler)", lambda p: raw(f"GET {p} HTTP/1.1", many_fields(10, 7000)), 431,
     "The request head is larger than 65,536 bytes"),
    ("a request line of four words (assembler)", lambda p: raw(f"GET {p} HTTP/1.1 extra"), 400,
     "Invalid request line"),
    ("an invalid method (gunicorn)", lambda p: raw(f"G@T {p} HTTP/1.1"), 400, "Bad request: Invalid HTTP method"),
    ("a bare LF (assembler)", lambda p: f"GET {p} HTTP/1.1\n{HOST}\r\n".encode(), 400,
     "Lines of a request head must end with CRLF"),
    ("an invalid chunk size (assembler)",
     lambda p: raw(f"POST {p} HTTP/1.1", "Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"), 400,
     "Invalid chunk size"),
    ("an invalid chunk extension (assembler)",
     lambda p: raw(f"POST {p} HTTP/1.1", "Transfer-Encoding: chunked\r\n", b"2;=\r\n{}\r\n0\r\n\r\n"), 400,
     "Invalid chunk extension"),
    ("Content-Length and Transfer-Encoding (assembler)",
     lambda p: raw(f"POST {p} HTTP/1.1", "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", b"{}"), 400,
     "A request may not have both"),
    ("an unknown transfer coding (assembler)", lambda p: raw(f"POST {p} HTTP/1.1", "Transfer-Encoding: foo\r\n"),
     501, "Transfer-Encoding 'foo' is not supported"),
    ("a body over the largest any endpoint accepts (assembler)",
     lambda p: raw(f"POST {p} HTTP/1.1", f"Content-Length: {100 * 1024 * 1024}\r\n", b"{"), 413,
     "The request body is 104,857,600 bytes; the largest this server accepts is 67,108,864."),
]


@pytest.mark.parametrize("what, build, status, message", CASES, ids=[case[0] for case in CASES])
def test_under_api_the_answer_is_the_json_error_shape(server, what, build, status, message):
    answer = exchange(server.port, build("/api/import"))
    assert (answer.status, answer.headers["content-type"]) == (status, "application/json")
    assert answer.headers["connection"] == "close"
    assert_promised_headers(answer)
    body = answer.json()
    assert set(body) == {"code", "status", "message"}
    assert body["code"] == status
    assert body["status"] and body["message"].startswith(message)


@pytest.mark.parametrize("what, build, status, message", CASES, ids=[case[0] for case in CASES])
def test_elsewhere_the_answer_is_a_page(server, what, build, status, message):
    answer = exchange(server.port, build("/"))
    assert (answer.status, answer.headers["content-type"]) == (status, "text/html; charset=utf-8")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert_promised_headers(answer)
    page = answer.body.decode()
    assert page.startswith("<!doctype html>")
    assert f"<h1>{status} " in page


def test_an_absolute_form_target_under_api_is_answered_in_json(server):
    answer = exchange(server.port, raw(f"GET http://127.0.0.1:{server.port}/api/models?{LONG_QUERY} HTTP/1.1"))
    assert (answer.status, answer.headers["content-type"]) == (414, "application/json")


def test_the_server_still_answers_after_all_of_them(server):
    answer = exchange(server.port, raw("GET /api/models HTTP/1.1", "Connection: close\r\n"))
    assert answer.status == 200
