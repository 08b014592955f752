"""HTTP/1.1 message framing, as little of it as is needed to know where a request ends.

The assembler (modelhub.serving.buffering) uses this to find the end of a request's head and body
while the bytes arrive; gunicorn's own parser still parses and validates the whole request later, in a
thread, from the buffered bytes. Where the two could disagree about where the request ends, this module
refuses the request (400/501) instead: the connection is then closed, so no disagreement can smuggle a
second request in.
"""

import re
from dataclasses import dataclass

# gunicorn's own rules, so that what passes here passes its parser: a body that fails there fails
# while the app reads it, which the app can only answer with a 500.
from gunicorn.http.body import CHUNK_EXT_RE
from gunicorn.http.message import (
    RFC9110_5_5_INVALID_AND_DANGEROUS,
    RFC9110_6_5_1_FORBIDDEN_TRAILER,
    TOKEN_RE,
)

CRLF = b"\r\n"
KNOWN_CODINGS = frozenset({"chunked", "identity", "gzip", "deflate", "compress", "x-gzip"})
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")  # 16 hex digits: more than any body we accept


class Malformed(Exception):
    """A request that cannot be framed: the status to answer and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Head:
    method: str
    target: str
    version: tuple[int, int]
    content_length: int | None
    chunked: bool
    expects_continue: bool


def request_target(first_line: bytes) -> str:
    """The target of a (possibly partial) request line, for choosing the error format; "" if none."""
    parts = first_line.split(b" ", 2)
    return parts[1].decode("latin-1") if len(parts) > 1 else ""


def parse_head(head: bytes) -> Head:
    """The framing of a complete head (request line and fields, without the blank line that ends it)."""
    request_line, _, fields = head.partition(CRLF)
    parts = request_line.split(b" ")
    if len(parts) != 3:
        raise Malformed(400, f"Invalid request line {request_line[:200].decode('latin-1')!r}.")
    method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
    version = _VERSION.fullmatch(parts[2])
    version = (int(version[1]), int(version[2])) if version else (1, 1)  # gunicorn refuses it later
    lengths, codings, expects = [], [], []
    for line in fields.split(CRLF) if fields else []:
        if line[:1] in (b" ", b"\t"):
            raise Malformed(400, "Header fields folded over several lines are not accepted.")
        name, colon, value = line.partition(b":")
        if not colon or not name:
            raise Malformed(400, f"Invalid header field {line[:100].decode('latin-1')!r}.")
        name, value = name.lower(), value.strip(b" \t").decode("latin-1")
        if name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            codings += [coding.strip(" \t").lower() for coding in value.split(",")]
        elif name == b"expect":
            expects.append(value.lower())
    chunked = _is_chunked(codings, version)
    if chunked and lengths:
        raise Malformed(400, "A request may not have both Content-Length and Transfer-Encoding.")
    return Head(method, target, version, None if chunked else _content_length(lengths), chunked,
                expects_continue=version >= (1, 1) and "100-continue" in expects)


def _is_chunked(codings: list[str], version: tuple[int, int]) -> bool:
    if not codings:
        return False
    unknown = [coding for coding in codings if coding not in KNOWN_CODINGS]
    if unknown:
        raise Malformed(501, f"Transfer-Encoding {unknown[0]!r} is not supported.")
    if codings[-1] != "chunked" or codings.count("chunked") > 1 or version < (1, 1):
        raise Malformed(400, "A request's Transfer-Encoding must end with chunked, once, in HTTP/1.1.")
    return True


def _content_length(values: list[str]) -> int | None:
    if not values:
        return None  # a request without a length has no body (RFC 9112 6.3)
    if len(values) > 1 or not values[0].isascii() or not values[0].isdigit():
        raise Malformed(400, "Content-Length must be one non-negative whole number.")
    return int(values[0])


class LengthFraming:
    """The end of a body of declared length: ``consume`` and ``done`` as ChunkedFraming's."""

    def __init__(self, length: int):
        self.left = length
        self.done = length == 0

    def consume(self, data: bytes | bytearray | memoryview) -> int:
        used = min(self.left, len(data))
        self.left -= used
        self.done = self.left == 0
        return used


class ChunkedFraming:
    """Finds the end of a chunked body in its raw bytes (which are kept as they are: gunicorn decodes them).

    ``consume(data)`` returns how many bytes of ``data`` belong to the body; ``done`` says whether the
    body has ended. Raw bytes are checked against ``max_body`` as they come, so an endless chunked
    upload is cut off at the same size as a declared one.
    """

    def __init__(self, max_line: int, max_trailers: int):
        self.max_line, self.max_trailers = max_line, max_trailers
        self.done = False
        self._line = bytearray()  # the part of a size line or trailer line seen so far
        self._data_left = 0  # bytes of chunk data still to come
        self._crlf_left = 0  # bytes of the CRLF after a chunk's data still to come
        self._in_trailers = False
        self._trailer_bytes = 0

    def consume(self, data: bytes | bytearray | memoryview) -> int:
        used = 0
        while used < len(data) and not self.done:
            if self._data_left:
                step = min(self._data_left, len(data) - used)
                self._data_left -= step
                used += step
            elif self._crlf_left:
                if data[used] != CRLF[2 - self._crlf_left]:
                    raise Malformed(400, "A chunk's data must end with CRLF.")
                self._crlf_left -= 1
                used += 1
            else:
                used += self._consume_line(data, used)
        return used

    def _consume_line(self, data, start: int) -> int:
        end = bytes(data[start:start + self.max_line + 2]).find(b"\n")
        piece = data[start:] if end < 0 else data[start:start + end + 1]
        self._line += piece
        if end < 0:
            if len(self._line) > self.max_line:
                raise Malformed(400, f"A chunk size or trailer line is longer than {self.max_line} bytes.")
            return len(piece)
        line = bytes(self._line)
        self._line.clear()
        if len(line) > self.max_line + 2:
            raise Malformed(400, f"A chunk size or trailer line is longer than {self.max_line} bytes.")
        if not line.endswith(CRLF) or b"\n" in line[:-1]:
            raise Malformed(400, "Chunk size and trailer lines must end with CRLF.")
        if self._in_trailers:
            self._end_trailer_line(line)
        else:
            self._start_chunk(line[:-2])
        return len(piece)

    def _start_chunk(self, line: bytes) -> None:
        size, semicolon, extensions = line.partition(b";")
        if semicolon:
            size = size.rstrip(b" \t")  # RFC 9112 7.1.1: whitespace before extensions only
        if not _HEX.fullmatch(size):
            raise Malformed(400, f"Invalid chunk size {size[:20].decode('latin-1')!r}.")
        if semicolon and not CHUNK_EXT_RE.fullmatch(b";" + extensions):
            raise Malformed(400, f"Invalid chunk extension {extensions[:50].decode('latin-1')!r}.")
        self._data_left = int(size, 16)
        if self._data_left:
            self._crlf_left = 2
        else:
            self._in_trailers = True

    def _end_trailer_line(self, line: bytes) -> None:
        if line == CRLF:
            self.done = True
            return
        self._trailer_bytes += len(line)
        if self._trailer_bytes > self.max_trailers:
            raise Malformed(431, f"The trailer fields are larger than {self.max_trailers:,} bytes.")
        name, colon, value = line[:-2].decode("latin-1").partition(":")
        if not colon or not TOKEN_RE.fullmatch(name) or RFC9110_5_5_INVALID_AND_DANGEROUS.search(value):
            raise Malformed(400, f"Invalid trailer field {line[:100].decode('latin-1')!r}.")
        if name.upper() in RFC9110_6_5_1_FORBIDDEN_TRAILER:
            raise Malformed(400, f"{name} may not be sent as a trailer field.")
