"""The request assembler on its own: bytes in, in any pieces; a complete request, a 100 Continue, a wait
or a refusal out; deadlines from a clock the test holds. Complete requests are read back with
gunicorn's own parser, as the worker's threads read them."""

import pytest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from modelhub.serving.buffering import (
    AssembledRequest,
    Limits,
    Progress,
    Rejection,
    RequestAssembler,
)

LIMITS = Limits(max_body_bytes=1000, max_request_line=100, max_field_bytes=50, max_head_bytes=400,
                head_timeout=10, body_grace=10, body_min_rate=100, spool_bytes=64)
HEAD = b"POST /api/models HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
GET = b"GET /api/models HTTP/1.1\r\nHost: h\r\n\r\n"
CHUNKED = (b"POST /api/import HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
           b"5;name=value;flag\r\nhello\r\n6 ; q=\"a b\"\r\n world\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n")


def feed(data: bytes, assembler: RequestAssembler | None = None, now: float = 0.0, piece: int | None = None):
    """Every outcome of feeding ``data`` (in pieces of ``piece`` bytes, or at once)."""
    assembler = assembler or RequestAssembler(LIMITS)
    piece = piece or len(data)
    return [assembler.feed(data[i:i + piece], now) for i in range(0, len(data), piece)]


def parsed(request: AssembledRequest) -> tuple[str, str, bytes]:
    """(method, path, decoded body) as gunicorn's parser reads the assembled bytes."""
    req = next(RequestParser(Config(), request.pieces(), ("127.0.0.1", 1)))
    return req.method, req.path, req.body.read()


@pytest.mark.parametrize("piece", [1, 2, 7, None])
def test_a_request_is_complete_only_when_its_last_byte_arrives(piece):
    outcomes = feed(HEAD + b"hello", piece=piece)
    assert all(outcome is Progress.NEED_MORE for outcome in outcomes[:-1])
    request = outcomes[-1]
    assert isinstance(request, AssembledRequest)
    assert b"".join(request.pieces()) == HEAD + b"hello"
    assert parsed(request) == ("POST", "/api/models", b"hello")


def test_a_request_without_a_length_has_no_body():
    (request,) = feed(GET)
    assert (request.target, request.body_bytes, b"".join(request.pieces())) == ("/api/models", 0, GET)


def test_empty_lines_before_a_request_are_ignored():
    assembler = RequestAssembler(LIMITS)
    assert feed(b"\r\n\r\n", assembler) == [Progress.NEED_MORE]
    assert not assembler.has_partial_request
    (request,) = feed(GET, assembler)
    assert b"".join(request.pieces()) == GET


@pytest.mark.parametrize("piece", [1, 3, None])
def test_a_chunked_body_with_extensions_and_trailers_is_kept_raw(piece):
    request = feed(CHUNKED, piece=piece)[-1]
    assert b"".join(request.pieces()) == CHUNKED
    assert parsed(request) == ("POST", "/api/import", b"hello world")


def test_pipelined_requests_come_out_one_at_a_time():
    assembler = RequestAssembler(LIMITS)
    (first,) = feed(GET + HEAD + b"hello" + b"GET /par", assembler)
    assert b"".join(first.pieces()) == GET
    second = assembler.advance(1.0)
    assert parsed(second) == ("POST", "/api/models", b"hello")
    assert assembler.advance(2.0) is Progress.NEED_MORE
    assert assembler.has_partial_request
    (third,) = feed(b"tial HTTP/1.1\r\n\r\n", assembler, now=3.0)
    assert third.target == "/partial"


def test_a_body_beyond_the_spool_size_goes_to_a_file():
    body = b"x" * 200
    (request,) = feed(HEAD.replace(b"5", b"200") + body)
    assert request._body._rolled  # a SpooledTemporaryFile past LIMITS.spool_bytes
    assert parsed(request)[2] == body
    request.close()


def test_expect_100_continue_is_asked_for_once_before_the_body():
    head = HEAD.replace(b"\r\n\r\n", b"\r\nExpect: 100-Continue\r\n\r\n")
    assembler = RequestAssembler(LIMITS)
    assert feed(head, assembler) == [Progress.SEND_CONTINUE]
    assert feed(b"he", assembler) == [Progress.NEED_MORE]
    assert isinstance(feed(b"llo", assembler)[0], AssembledRequest)
    assert isinstance(feed(head + b"hello")[0], AssembledRequest)  # the body came anyway: nothing to ask
    assert feed(head.replace(b"HTTP/1.1", b"HTTP/1.0")) == [Progress.NEED_MORE]  # RFC 9110 10.1.1


def refusal(data: bytes, limits: Limits = LIMITS) -> tuple[int, str, str]:
    outcome = RequestAssembler(limits).feed(data, 0.0)
    assert isinstance(outcome, Rejection), outcome
    return outcome.status, outcome.message, outcome.target


@pytest.mark.parametrize("data, status, message", [
    (b"GET /api/" + b"x" * 100 + b" HTTP/1.1\r\n", 414, "The request line is longer than 100 bytes."),
    (b"GET /api/" + b"x" * 100, 414, "The request line is longer than 100 bytes."),
    (b"GET /api/x HTTP/1.1\r\n" + b"X-A: b\r\n" * 60, 431, "The request head is larger than 400 bytes."),
    (HEAD.replace(b"5", b"1001"), 413, "The request body is 1,001 bytes; the largest this server accepts is 1,000."),
    (CHUNKED.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + b"3e8\r\n" + b"x" * 1000 + b"\r\n1\r\nx", 413,
     "The request body is larger than the largest this server accepts (1,000 bytes)."),
    (b"GET /api/x HTTP/1.1\nHost: h\r\n\r\n", 400, "Lines of a request head must end with CRLF, not LF alone."),
    (b"GET /api/x HTTP/1.1 x\r\n\r\n", 400, "Invalid request line 'GET /api/x HTTP/1.1 x'."),
    (b"GET /api/x HTTP/1.1\r\nNoColon\r\n\r\n", 400, "Invalid header field 'NoColon'."),
    (b"GET /api/x HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400, "Header fields folded over several lines"),
    (HEAD.replace(b"5", b"-5"), 400, "Content-Length must be one non-negative whole number."),
    (HEAD.replace(b"5", b"5\r\nContent-Length: 5"), 400, "Content-Length must be one"),
    (HEAD.replace(b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, "A request may not have both"),
    (CHUNKED.replace(b"gzip, chunked", b"br"), 501, "Transfer-Encoding 'br' is not supported."),
    (CHUNKED.replace(b"gzip, chunked", b"chunked, gzip"), 400, "A request's Transfer-Encoding must end with chunked"),
    (CHUNKED.replace(b"gzip, chunked", b"chunked, chunked"), 400, "A request's Transfer-Encoding must end with"),
    (CHUNKED.replace(b"HTTP/1.1", b"HTTP/1.0"), 400, "A request's Transfer-Encoding must end with chunked"),
    (CHUNKED.replace(b"5;name", b"g;name"), 400, "Invalid chunk size 'g'."),
    (CHUNKED.replace(b"5;name=value", b"5;=value"), 400, "Invalid chunk extension '=value;flag'."),
    (CHUNKED.replace(b"hello\r\n", b"hello!\r\n"), 400, "A chunk's data must end with CRLF."),
    (CHUNKED.replace(b"5;name", b"5" + b" " * 60 + b";name"), 400, "A chunk size or trailer line is longer than 50"),
    (CHUNKED.replace(b"X-Sum: 1", b"Content-Length: 1"), 400, "Content-Length may not be sent as a trailer field."),
    (CHUNKED.replace(b"X-Sum: 1", b"X Sum: 1"), 400, "Invalid trailer field 'X Sum: 1"),
])
def test_requests_that_cannot_be_framed_safely_are_refused(data, status, message):
    refused_status, refused_message, target = refusal(data)
    assert refused_status == status
    assert refused_message.startswith(message)
    assert target.startswith("/api/")  # the target seen, to answer in the API's shape


def test_a_refusal_before_any_request_line_has_no_target():
    assert refusal(b"\x16\x03\x01" + b"\x00" * 200)[2] == ""


def test_a_head_that_does_not_complete_in_time_is_a_408():
    assembler = RequestAssembler(LIMITS)
    assert assembler.expired(1000.0) is None  # nothing arrived yet: idle, the worker's business
    assembler.feed(b"GET /api/models HTTP/1.1\r\nHo", 5.0)
    assert assembler.expired(15.0) is None
    assert assembler.expired(15.1) == Rejection(408, "The request head did not arrive within 10 s.", "/api/models")


def test_a_body_must_keep_coming_at_the_floor_rate_after_the_grace_period():
    assembler = RequestAssembler(LIMITS)  # 10 s grace, then 100 bytes/s
    assembler.feed(HEAD.replace(b"5", b"1000") + b"x" * 100, 0.0)
    assert assembler.expired(10.9) is None  # 100 bytes bought 1 s past the grace
    assembler.feed(b"x" * 500, 10.9)
    assert assembler.expired(15.9) is None  # 600 bytes: 6 s past the grace
    rejection = assembler.expired(16.1)
    assert (rejection.status, rejection.target) == (408, "/api/models")
    assert rejection.message.startswith("The request body arrived too slowly: 600 of 1,000 bytes in 16 s")


def test_after_a_complete_request_the_clocks_wait_for_the_next_one():
    assembler = RequestAssembler(LIMITS)
    feed(GET, assembler)
    assert not assembler.has_partial_request
    assert assembler.expired(10_000.0) is None
