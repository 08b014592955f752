"""Raw-socket clients for the serving tests: exact bytes on the wire, and the misbehaving clients."""

import json
import socket
import threading
import time
from dataclasses import dataclass

HOST_HEADER = b"Host: 127.0.0.1\r\n"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


def connect(port: int, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_answer(sock: socket.socket, buffered: bytearray | None = None) -> Answer:
    """One response (with a Content-Length) from ``sock``; bytes read past it stay in ``buffered``."""
    buffered = bytearray() if buffered is None else buffered
    while b"\r\n\r\n" not in buffered:
        _receive_into(sock, buffered)
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
    length = int(headers.get("content-length", 0))
    buffered[:] = rest
    while len(buffered) < length:
        _receive_into(sock, buffered)
    body = bytes(buffered[:length])
    del buffered[:length]
    return Answer(int(status_line.split(" ")[1]), headers, body)


def _receive_into(sock: socket.socket, buffered: bytearray) -> None:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError(f"closed after {bytes(buffered)[:200]!r}")
    buffered += data


def exchange(port: int, data: bytes, timeout: float = 15) -> Answer:
    """Send ``data`` on a new connection and read one answer."""
    with connect(port, timeout) as sock:
        sock.sendall(data)
        return read_answer(sock)


def request_bytes(method: str, target: str, body: bytes = b"", headers: str = "") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body or method in ("POST", "PATCH", "PUT") else ""
    return (f"{method} {target} HTTP/1.1\r\n".encode() + HOST_HEADER
            + f"Content-Type: application/json\r\n{length}{headers}\r\n".encode() + body)


def is_open(sock: socket.socket) -> bool:
    """Whether the server still holds this connection (nothing to read, and no end of stream)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False  # an answer, or the end of the stream: no longer held
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


class Dribbler:
    """Sends a request's head a byte at a time, one byte per ``interval`` seconds, on each socket."""

    def __init__(self, sockets: list[socket.socket], head: bytes, interval: float = 0.2):
        self.sockets, self.head, self.interval = sockets, head, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        sent = 0
        while not self._stop.wait(self.interval) and sent < len(self.head) - 4:  # never the end of the head
            for sock in self.sockets:
                try:
                    sock.send(self.head[sent:sent + 1])
                except OSError:
                    pass  # the server closed it (what the test is about to check)
            sent += 1


def timed_get(port: int, target: str, timeout: float) -> tuple[float, int]:
    """(seconds, status) of a GET on a new connection; the seconds are ``timeout`` if it did not answer."""
    began = time.perf_counter()
    try:
        answer = exchange(port, request_bytes("GET", target, headers="Connection: close\r\n"), timeout)
    except OSError:
        return timeout, 0
    return time.perf_counter() - began, answer.status
