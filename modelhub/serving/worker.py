"""The gunicorn worker modelhub serves with: gthread, except that a thread only ever gets a whole request.

Stock gthread gives each new connection to a thread, which then blocks reading the head and the body:
ten clients that stall mid-request hold ten threads, and a default server (8 threads) answers no one.
Here the worker's main loop (its selector, non-blocking sockets) reads every request into a
``RequestAssembler``, with deadlines, and only a complete request goes to the thread pool; the thread
parses it with gunicorn's parser from the buffered bytes (never from the socket) and runs the app. Idle
and kept-alive connections wait in the selector, not in a thread. Errors met below the app are answered
in the app's shapes (modelhub.serving.answers). Plain HTTP/1.x only: modelhub serves no TLS and no h2c.
"""

import errno
import os
import selectors
import socket
import threading
import time
from datetime import timedelta
from functools import partial

from gunicorn.http.errors import NoMoreData
from gunicorn.http.parser import RequestParser
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.http import HTTP_STATUS_CODES

from modelhub.exchange.document import DEFAULT_MAX_BYTES
from modelhub.serving.answers import describe, error_response
from modelhub.serving.buffering import (
    CONTINUE_RESPONSE,
    HEAD_TIMEOUT_SECONDS,
    AssembledRequest,
    Limits,
    Progress,
    Rejection,
    RequestAssembler,
)

# One recv per readiness event: large enough that a 64 MiB import is a few hundred reads, small enough
# that one fast upload does not starve the other connections of the main loop.
RECV_BYTES = 256 * 1024
# After an error answer (or any answer that closes) the client may still be sending; closing with unread
# bytes makes the kernel reset the connection, and the client can lose the answer. So the write side is
# shut and what still arrives is discarded, for 2 s or 1 MiB at most, before closing.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 1024 * 1024
# A thread writes the response on a blocking socket: a client that stops reading holds it 30 s at most.
SEND_TIMEOUT_SECONDS = 30.0
# How often deadlines are checked; the main loop wakes at least once a second anyway.
SWEEP_SECONDS = 0.25
GUNICORN_LINE_LIMIT = 8190  # gunicorn's own cap on limit_request_line and limit_request_field_size

_KEEP, _CLOSE = "keep-alive", "close"


class Connection:
    """One client connection, owned by the main loop except while a thread serves its request."""

    def __init__(self, sock, client, server, limits: Limits, idle_until: float):
        self.sock, self.client, self.server = sock, client, server
        self.assembler = RequestAssembler(limits)
        self.idle_until = idle_until  # when a connection with no request in progress is closed
        self.linger_until: float | None = None  # set once the connection is closing
        self.lingered_bytes = 0
        self.busy = False  # a thread is serving it
        self.watched = False  # registered with the selector


class BufferingWorker(ThreadWorker):
    def run(self):
        # After load_wsgi: the app's own limits are known.
        self.limits = limits_for(self.cfg, self.wsgi)
        self.connections: set[Connection] = set()
        self._next_sweep = 0.0
        self._serving = threading.local()  # the target of the request a thread serves, for handle_error
        super().run()

    # The main loop: accepting, reading, deadlines

    def accept(self, listener):
        try:
            sock, client = listener.accept()
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        sock.setblocking(False)
        self.nr_conns += 1
        # A new connection must send its head within the head timeout; it occupies no thread meanwhile.
        conn = Connection(sock, client, listener.getsockname(), self.limits, time.monotonic() + HEAD_TIMEOUT_SECONDS)
        self.connections.add(conn)
        self._watch(conn)

    def _on_readable(self, conn: Connection, _sock) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if conn.linger_until is not None:
            conn.lingered_bytes += len(data)
            if not data or conn.lingered_bytes > LINGER_MAX_BYTES:
                self._close(conn)
        elif not data:
            # The client went away: a request it did not finish is dropped, never handed to the app.
            self._close(conn)
        else:
            self._act_on(conn, conn.assembler.feed(data, time.monotonic()))

    def _act_on(self, conn: Connection, outcome) -> None:
        if outcome is Progress.NEED_MORE:
            return
        if outcome is Progress.SEND_CONTINUE:
            _send_quietly(conn.sock, CONTINUE_RESPONSE)
        elif isinstance(outcome, Rejection):
            self._refuse(conn, outcome)
        else:
            self._dispatch(conn, outcome)

    def murder_pending(self):
        """Called by the main loop after every wake-up: close or refuse connections past their deadlines."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_SECONDS
        for conn in [c for c in self.connections if not c.busy]:
            if conn.linger_until is not None:
                if now > conn.linger_until:
                    self._close(conn)
            elif conn.assembler.has_partial_request:
                rejection = conn.assembler.expired(now)
                if rejection:
                    self._refuse(conn, rejection)
            elif now > conn.idle_until or not self.alive:
                self._close(conn)

    def murder_keepalived(self, force=False):
        if force:  # the worker is exiting
            for conn in list(self.connections):
                self._close(conn)

    # Handing complete requests to threads

    def _dispatch(self, conn: Connection, request: AssembledRequest) -> None:
        self._unwatch(conn)
        conn.busy = True
        future = self.tpool.submit(self._serve, conn, request)
        future.add_done_callback(lambda done: self.method_queue.defer(self._served, conn, done))

    def _serve(self, conn: Connection, request: AssembledRequest) -> str:
        """In a thread: parse the buffered request with gunicorn's parser and run the app."""
        self._serving.target = request.target
        req = None
        try:
            conn.sock.settimeout(SEND_TIMEOUT_SECONDS)  # blocking, bounded: only responses are written here
            parser = RequestParser(self.cfg, request.pieces(), conn.client)
            req = next(parser)
            req._expected_100_continue = False  # answered while the body arrived (or moot: it is here)
            keep_alive = self.handle_request(req, conn) and parser.finish_body()
            return _KEEP if keep_alive else _CLOSE
        except (StopIteration, NoMoreData):
            return _CLOSE
        except OSError as error:  # the client went away, or stopped reading the response
            if error.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN) and not isinstance(error, TimeoutError):
                self.log.exception("Socket error processing request.")
            return _CLOSE
        except Exception as error:  # noqa: BLE001 - whatever failed, the client gets an answer (gunicorn's way)
            self.handle_error(req, conn.sock, conn.client, error)
            return _CLOSE
        finally:
            request.close()
            self._serving.target = None

    def _served(self, conn: Connection, done) -> None:
        """Back in the main loop: wait for the connection's next request, or close it."""
        conn.busy = False
        outcome = _CLOSE if done.cancelled() or done.exception() else done.result()
        if outcome != _KEEP or not self.alive:
            self._linger(conn)
            return
        now = time.monotonic()
        conn.sock.setblocking(False)
        conn.idle_until = now + self.cfg.keepalive
        self._watch(conn)
        self._act_on(conn, conn.assembler.advance(now))  # a pipelined request may be complete already

    # Errors and closing

    def _refuse(self, conn: Connection, rejection: Rejection) -> None:
        self.log.warning("Refused request from ip=%s: %s %s", _ip(conn.client), rejection.status, rejection.message)
        _send_quietly(conn.sock, error_response(rejection.status, rejection.message, rejection.target))
        self._linger(conn)

    def handle_error(self, req, client, addr, exc):
        """gunicorn's parse errors (400, 414, 431, 501…) and app crashes, in the app's error shapes."""
        status, message = describe(exc)
        if status >= 500:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
        else:
            self.log.warning("Invalid request from ip=%s: %s", _ip(addr), exc)
        req = req or getattr(exc, "req", None)
        target = getattr(req, "uri", None) or getattr(self._serving, "target", None) or ""
        payload = error_response(status, message, target)
        if req is not None:
            self._log_access(req, client, addr, status, len(payload))
        _send_quietly(client, payload)

    def _log_access(self, req, client, addr, status: int, length: int) -> None:
        try:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = _ip(addr), str((addr or ("", -1))[1])
            resp = Response(req, client, self.cfg)
            resp.status, resp.response_length = f"{status} {HTTP_STATUS_CODES.get(status, '')}", length
            self.log.access(resp, req, environ, timedelta(0))
        except Exception:  # the access log must never stop the answer
            self.log.debug("Could not log the refused request.", exc_info=True)

    def _linger(self, conn: Connection) -> None:
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.linger_until = time.monotonic() + LINGER_SECONDS
        self._watch(conn)

    def _close(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self._unwatch(conn)
        self.connections.discard(conn)
        self.nr_conns -= 1
        conn.sock.close()

    def _watch(self, conn: Connection) -> None:
        if not conn.watched:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
            conn.watched = True

    def _unwatch(self, conn: Connection) -> None:
        if conn.watched:
            self.poller.unregister(conn.sock)
            conn.watched = False


def limits_for(cfg, app) -> Limits:
    """The assembler's limits: gunicorn's line limits, and the largest body the app accepts anywhere."""
    def line_limit(value: int) -> int:
        return value if 0 < value <= GUNICORN_LINE_LIMIT else GUNICORN_LINE_LIMIT

    return Limits(max_body_bytes=largest_accepted_body(app), max_request_line=line_limit(cfg.limit_request_line),
                  max_field_bytes=line_limit(cfg.limit_request_field_size))


def largest_accepted_body(app) -> int:
    """Imports accept the most (MODELHUB_IMPORT_MAX_BYTES, 64 MiB by default); every other request 1 MiB."""
    config = getattr(app, "config", {})
    imports = config.get("MODELHUB_IMPORT_MAX_BYTES") or os.environ.get("MODELHUB_IMPORT_MAX_BYTES")
    return max(int(imports or DEFAULT_MAX_BYTES), int(config.get("MAX_CONTENT_LENGTH") or 0))


def _send_quietly(sock, data: bytes) -> None:
    """Write a short answer; a client that is gone or not reading simply does not get it."""
    try:
        sock.sendall(data)
    except OSError:
        pass


def _ip(addr) -> str:
    return addr[0] if isinstance(addr, tuple) and addr else ""
