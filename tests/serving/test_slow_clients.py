"""Slow and vanishing clients against a real default ``modelhub serve`` (1 worker, 8 threads), over real
sockets: they hold no thread, the server keeps answering everyone else, a stalled request is answered
408 at its deadline, and a body that never fully arrived is never applied."""

import json
import socket
import time

import pytest
import requests

from modelhub.serving.buffering import BODY_GRACE_SECONDS, HEAD_TIMEOUT_SECONDS
from tests.serving.clients import Dribbler, connect, is_open, read_answer, timed_get
from tests.support import LiveServer

pytestmark = pytest.mark.slow

DRIBBLING_HEADS, STALLED_BODIES, IDLE = 20, 20, 10  # 50 connections
PROBES, PROBE_INTERVAL, PROBE_LIMIT = 6, 0.5, 1.0
# Never ends: the dribblers send it a byte at a time, and stop before the blank line.
DRIBBLED_HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + b"x" * 500 + b"\r\n\r\n"
# Headers and 1 byte of a declared 1,000-byte body.
STALLED_BODY = (b"PATCH /api/models/gpt2/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{")


@pytest.fixture
def default_server(tmp_path):
    server = LiveServer(tmp_path / "home")
    server.start()
    requests.post(f"{server.url}/api/models", json={"model_name": "gpt2"}, timeout=5)
    yield server
    server.stop()


def test_50_stalled_clients_hold_no_thread_and_are_cut_off_at_their_deadlines(default_server, record_figures):
    port = default_server.port
    opened = time.monotonic()
    dribbling = [connect(port, timeout=30) for _ in range(DRIBBLING_HEADS)]
    stalled = [connect(port, timeout=30) for _ in range(STALLED_BODIES)]
    idle = [connect(port, timeout=30) for _ in range(IDLE)]
    for sock in stalled:
        sock.sendall(STALLED_BODY)
    with Dribbler(dribbling, DRIBBLED_HEAD):
        time.sleep(1)  # every stalled connection is in place, several dribbled bytes in
        probes = []
        for _ in range(PROBES):
            probes.append(timed_get(port, "/api/models", timeout=PROBE_LIMIT * 5))
            time.sleep(PROBE_INTERVAL)
        held = sum(is_open(sock) for sock in dribbling + stalled + idle)
        measured_for = time.monotonic() - opened

        latencies = [seconds for seconds, _ in probes]
        record_figures(stalled_connections=held, probes=len(probes), worst_get_seconds=round(max(latencies), 4),
                       median_get_seconds=round(sorted(latencies)[len(latencies) // 2], 4),
                       held_for_seconds=round(measured_for, 1))
        assert [status for _, status in probes] == [200] * PROBES
        assert max(latencies) < PROBE_LIMIT
        assert held == DRIBBLING_HEADS + STALLED_BODIES + IDLE  # all 50 were really stalled meanwhile

        # At their deadlines: a 408 in the shape of the request's path; idle connections just closed.
        for sock in stalled:
            answer = read_answer(sock)
            assert (answer.status, answer.headers["content-type"]) == (408, "application/json")
            assert answer.json()["code"] == 408
            assert answer.json()["message"].startswith("The request body arrived too slowly: 1 of 1,000 bytes")
        for sock in dribbling:
            answer = read_answer(sock)
            assert (answer.status, answer.headers["content-type"]) == (408, "text/html; charset=utf-8")
            assert b"<h1>408 Request Timeout</h1>" in answer.body
    for sock in idle:
        assert sock.recv(1) == b""
    elapsed = time.monotonic() - opened
    assert elapsed < max(HEAD_TIMEOUT_SECONDS, BODY_GRACE_SECONDS) + 3
    for sock in dribbling + stalled + idle:
        sock.close()
    assert requests.get(f"{default_server.url}/api/models/gpt2", timeout=5).json()["compatibility_notes"] is None


def send_half(port: int, body: bytes, end: str) -> bytes:
    """PATCH gpt2's config with ``body`` declared but half of it sent; then the client ``end``s the
    connection: "shutdown" (half-close, waits for an answer) or "close". What the server answered."""
    sock = connect(port)
    head = (b"PATCH /api/models/gpt2/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    sock.sendall(head + body[:len(body) // 2])
    time.sleep(0.3)
    answer = b""
    if end == "shutdown":
        sock.shutdown(socket.SHUT_WR)
        while data := sock.recv(65536):
            answer += data
    sock.close()
    return answer


def test_a_body_that_did_not_fully_arrive_is_never_applied(live_server):
    base = f"{live_server.url}/api/models"
    requests.post(base, json={"model_name": "gpt2", "compatibility_notes": "before"}, timeout=5)
    before = requests.get(f"{base}/gpt2", timeout=5).json()
    document = json.dumps({"compatibility_notes": "applied from half a body"}).encode()
    body = document + b" " * len(document)  # its first half alone is a complete JSON document

    assert send_half(live_server.port, body, "shutdown") == b""  # no answer: there was no request
    send_half(live_server.port, body, "close")
    time.sleep(1)

    assert requests.get(f"{base}/gpt2", timeout=5).json() == before
    # The same body sent whole is applied: the test's body is one the server would take.
    whole = requests.patch(f"{base}/gpt2/config", data=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert whole.json()["compatibility_notes"] == "applied from half a body"
