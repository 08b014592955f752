"""Assembling whole requests from bytes as they arrive, so that no thread ever waits on a client.

A ``RequestAssembler`` belongs to one connection. The worker's main loop feeds it what ``recv`` gave
(``feed``), asks it about deadlines (``expired``), and gets back one of: more bytes are needed; a
``100 Continue`` should be sent; a complete ``AssembledRequest`` (its head and raw body, which a thread
then parses with gunicorn's parser, reading only these bytes); or a ``Rejection`` to answer before
closing. Bytes after a complete request (pipelining) stay for the next one. Pure: the clock is passed
in, nothing here touches a socket.
"""

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from modelhub.serving.framing import (
    CRLF,
    ChunkedFraming,
    Head,
    LengthFraming,
    Malformed,
    parse_head,
    request_target,
)

# A head is a few hundred bytes, sent in one go by any real client: 10 s covers a slow link and a
# busy machine, and bounds how long a client that dribbles its head keeps a connection open.
HEAD_TIMEOUT_SECONDS = 10.0
# Bodies get a grace period (the same 10 s), then must keep arriving at 16 KiB/s on average: 128
# kbit/s, slower than any real link, while a 1,000-byte body left hanging is cut off after ~10 s.
BODY_GRACE_SECONDS = 10.0
BODY_MIN_BYTES_PER_SECOND = 16 * 1024
# gunicorn allows 100 fields of 8,190 bytes; real heads (cookies included) stay far under 64 KiB, and
# a head is held in memory while it arrives.
MAX_HEAD_BYTES = 64 * 1024
# Every body but an import's is at most 1 MiB (the app's MAX_CONTENT_LENGTH): those stay in memory,
# bigger ones go to a temporary file, so 50 uploads in flight cannot take 50 x 64 MiB of memory.
SPOOL_BYTES = 1024 * 1024
READ_PIECE_BYTES = 64 * 1024
CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int  # the largest body the app accepts anywhere
    max_request_line: int = 8190  # gunicorn's limit_request_line
    max_field_bytes: int = 8190  # gunicorn's limit_request_field_size (also for chunk size lines)
    max_head_bytes: int = MAX_HEAD_BYTES
    head_timeout: float = HEAD_TIMEOUT_SECONDS
    body_grace: float = BODY_GRACE_SECONDS
    body_min_rate: float = BODY_MIN_BYTES_PER_SECOND
    spool_bytes: int = SPOOL_BYTES


class Progress(Enum):
    NEED_MORE = "wait for more bytes"
    SEND_CONTINUE = "send 100 Continue, then wait for the body"


@dataclass(frozen=True)
class Rejection:
    status: int
    message: str
    target: str  # the request target as far as it was seen ("" if none): chooses JSON or HTML


class AssembledRequest:
    """A complete request: its head and raw body (chunked bodies still chunked), read once."""

    def __init__(self, head: Head, raw_head: bytes, body, body_bytes: int):
        self.head, self.raw_head, self.body_bytes = head, raw_head, body_bytes
        self._body = body  # a SpooledTemporaryFile, or None for a request without a body

    @property
    def target(self) -> str:
        return self.head.target

    def pieces(self) -> Iterator[bytes]:
        """The request's bytes, as gunicorn's parser reads them (an iterable source)."""
        yield self.raw_head
        if self._body is not None:
            self._body.seek(0)
            while piece := self._body.read(READ_PIECE_BYTES):
                yield piece

    def close(self) -> None:
        if self._body is not None:
            self._body.close()


class RequestAssembler:
    """One connection's requests, assembled one at a time from whatever bytes arrive."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._buffer = bytearray()  # bytes not yet part of a head or body
        self._scanned = 0  # how much of the buffer is known not to hold the end of the head
        self._start_request()

    def _start_request(self) -> None:
        self._head_started: float | None = None  # set by the request's first byte
        self._head: Head | None = None
        self._target_seen: str | None = None  # once the head is complete, even if it is malformed
        self._raw_head = b""
        self._framing = None
        self._body = None
        self._body_bytes = 0
        self._body_started = 0.0
        self._continue_sent = False

    @property
    def has_partial_request(self) -> bool:
        """Whether some of a request has arrived (a connection without one is merely idle)."""
        return self._head_started is not None

    def feed(self, data: bytes, now: float):
        """Take bytes from the client; what to do next (see ``advance``)."""
        self._buffer += data
        return self.advance(now)

    def advance(self, now: float):
        """NEED_MORE, SEND_CONTINUE, an AssembledRequest or a Rejection, from the bytes held."""
        try:
            if self._head is None:
                self._strip_empty_lines()
                if not self._buffer:
                    return Progress.NEED_MORE
                if self._head_started is None:
                    self._head_started = now
                if not self._take_head(now):
                    return Progress.NEED_MORE
            return self._take_body()
        except Malformed as error:
            return self._reject(error.status, error.message)

    def expired(self, now: float) -> Rejection | None:
        """A 408 if the request in progress is past its deadline, else None."""
        limits = self.limits
        if self._head is None:
            if self._head_started is not None and now - self._head_started > limits.head_timeout:
                return self._reject(408, f"The request head did not arrive within {limits.head_timeout:g} s.")
            return None
        elapsed = now - self._body_started
        if elapsed > limits.body_grace + self._body_bytes / limits.body_min_rate:
            declared = self._head.content_length
            received = f"{self._body_bytes:,}" + (f" of {declared:,}" if declared is not None else "")
            return self._reject(408, (
                f"The request body arrived too slowly: {received} bytes in {elapsed:.0f} s (after the first "
                f"{limits.body_grace:g} s it must come at {limits.body_min_rate / 1024:g} KiB/s or more)."))
        return None

    def _strip_empty_lines(self) -> None:
        # RFC 9112 2.2: a server should ignore empty lines before a request line (some clients send an
        # extra CRLF after a body).
        while self._buffer[:2] == CRLF:
            del self._buffer[:2]
            self._scanned = 0

    def _take_head(self, now: float) -> bool:
        """Move a complete head out of the buffer; False while it is incomplete."""
        end = self._buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
        self._check_head_so_far(len(self._buffer) if end < 0 else end + 4)
        if end < 0:
            self._scanned = len(self._buffer)
            return False
        raw = bytes(self._buffer[:end + 4])
        del self._buffer[:end + 4]
        self._scanned = 0
        self._target_seen = request_target(raw.partition(CRLF)[0])
        self._head, self._raw_head, self._body_started = parse_head(raw[:-4]), raw, now
        self._framing = self._body_framing(self._head)
        return True

    def _check_head_so_far(self, head_bytes: int) -> None:
        buffer, limits = self._buffer, self.limits
        line_end = buffer.find(CRLF, 0, limits.max_request_line + 2)
        if line_end < 0 and len(buffer) > limits.max_request_line + 1 or line_end > limits.max_request_line:
            raise Malformed(414, f"The request line is longer than {limits.max_request_line:,} bytes.")
        if head_bytes > limits.max_head_bytes:
            raise Malformed(431, f"The request head is larger than {limits.max_head_bytes:,} bytes.")
        newline = buffer.find(b"\n", max(0, self._scanned - 3), head_bytes)
        while newline >= 0:
            if newline == 0 or buffer[newline - 1] != CRLF[0]:
                raise Malformed(400, "Lines of a request head must end with CRLF, not LF alone.")
            newline = buffer.find(b"\n", newline + 1, head_bytes)

    def _body_framing(self, head: Head):
        limits = self.limits
        if head.chunked:
            return ChunkedFraming(limits.max_field_bytes, limits.max_head_bytes)
        length = head.content_length or 0
        if length > limits.max_body_bytes:
            raise Malformed(413, f"The request body is {length:,} bytes; the largest this server accepts is "
                                 f"{limits.max_body_bytes:,}.")
        return LengthFraming(length)

    def _take_body(self):
        framing = self._framing
        if self._buffer and not framing.done:
            used = framing.consume(self._buffer)
            self._store_body(self._buffer[:used])
            del self._buffer[:used]
        if framing.done:
            return self._complete()
        if self._head.expects_continue and not self._continue_sent and not self._body_bytes:
            self._continue_sent = True
            return Progress.SEND_CONTINUE
        return Progress.NEED_MORE

    def _store_body(self, data: bytearray) -> None:
        if not data:
            return
        self._body_bytes += len(data)
        if self._body_bytes > self.limits.max_body_bytes:  # only a chunked body gets here
            raise Malformed(413, f"The request body is larger than the largest this server accepts "
                                 f"({self.limits.max_body_bytes:,} bytes).")
        if self._body is None:
            # Lives across feeds and threads: AssembledRequest.close (or _reject) closes it.
            self._body = tempfile.SpooledTemporaryFile(max_size=self.limits.spool_bytes)  # noqa: SIM115
        self._body.write(data)

    def _complete(self) -> AssembledRequest:
        request = AssembledRequest(self._head, self._raw_head, self._body, self._body_bytes)
        self._start_request()
        return request

    def _reject(self, status: int, message: str) -> Rejection:
        target = self._target_seen
        if target is None:
            target = request_target(bytes(self._buffer[:self.limits.max_request_line + 2]).partition(CRLF)[0])
        if self._body is not None:
            self._body.close()
        self._start_request()
        self._buffer.clear()
        return Rejection(status, message, target)
