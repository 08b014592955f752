"""API latency benchmark: the real endpoints against a "floor" doing the same database work.

On a real server (``modelhub.server.serve``: gunicorn, 1 worker, N threads) on 127.0.0.1 it measures
the median and p99 latency (one sequential keep-alive client) and the requests/s (concurrent
keep-alive clients) of ``GET /api/models/{name}``, ``PATCH /api/models/{name}/config``
(``{"compatibility_notes": "bench <i>"}``) and ``PATCH /api/models/{name}/metadata``
(``{"mmlu_score": <varying>}``), each next to a floor view in the same process, app and SQLAlchemy
session doing the same SQL without validation or serialization: GET, one ``SELECT * ... WHERE
model_name = ?`` answering ``ok``; PATCH, that SELECT then ``UPDATE ... SET <col> = ?, updated_at = ?,
version = version + 1 WHERE id = ? AND version = ?`` and COMMIT (the UPDATE the ORM sends). Real and
floor batches alternate round by round so machine noise hits both; the real/floor ratios are checked
against ``--target``. The database (1000 filler models plus one per client) is a temporary SQLite
file or, with ``--database-url``, a fresh PostgreSQL schema dropped at the end. From the repo root:

    .venv/bin/python bench/api.py
    .venv/bin/python bench/api.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Prints a markdown table and PASS/FAIL (exit status 0/1). Not a test; ``--help`` lists the knobs.
"""

import argparse
import contextlib
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from flask import Blueprint, request
from sqlalchemy import DateTime, bindparam, insert, text
from sqlalchemy.engine import make_url

from modelhub.extensions import db

from common import empty_database  # bench/common.py (this script's directory is on sys.path)

HOST = "127.0.0.1"
FILLER_MODELS = 1000
WRITE_ATTEMPTS = 20  # as registry.UNGUARDED_WRITE_ATTEMPTS: retry a write that lost a version race

# The floor: bare views registered on the served app.
floor = Blueprint("bench_floor", __name__, url_prefix="/bench-floor")
SELECT_ROW = text("SELECT * FROM modelregistry WHERE model_name = :name")
FLOOR_COLUMNS = {"config": "compatibility_notes", "metadata": "mmlu_score"}
UPDATES = {
    column: text(
        f"UPDATE modelregistry SET {column} = :value, updated_at = :now, version = version + 1 "
        "WHERE id = :id AND version = :version"
    ).bindparams(bindparam("now", type_=DateTime(timezone=True)))
    for column in FLOOR_COLUMNS.values()
}


@floor.get("/models/<path:name>")
def floor_get(name):
    row = db.session.execute(SELECT_ROW, {"name": name}).first()
    return ("ok", 200) if row is not None else ("missing", 404)


@floor.patch("/models/<path:name>/<any(config, metadata):part>")
def floor_patch(name, part):
    column = FLOOR_COLUMNS[part]
    value = request.get_json()[column]
    for _ in range(WRITE_ATTEMPTS):
        row = db.session.execute(SELECT_ROW, {"name": name}).first()
        if row is None:
            return "missing", 404
        params = {"value": value, "now": datetime.now(UTC), "id": row.id, "version": row.version}
        written = db.session.execute(UPDATES[column], params).rowcount
        db.session.commit()
        if written == 1:
            return "ok", 200
    return "busy", 503


def build_app(database_url: str):
    """What the server runs: modelhub's own app, plus the floor views."""
    from modelhub.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_AUTO_UPGRADE": False})
    app.register_blueprint(floor)
    return app


def model_name(i: int) -> str:
    return f"bench-org/model-{i}"


def seed(database_url: str, own_models: int) -> None:
    """Create the schema (the migrations) and register the benchmark's models and the filler."""
    from modelhub.app import create_app
    from modelhub.models import ModelRegistry

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    names = [model_name(i) for i in range(own_models)] + [f"filler-org/model-{i}" for i in range(FILLER_MODELS)]
    with app.app_context():
        db.session.execute(insert(ModelRegistry), [{"model_name": n, "hf_path": n} for n in names])
        db.session.commit()
        db.engine.dispose()


@contextlib.contextmanager
def running_server(database_url: str, threads: int, workdir: str, timeout: float = 30):
    """Run this script with --serve in a subprocess, yield its port once it answers; always stop it."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    command = [sys.executable, os.path.abspath(__file__), "--serve", "--port", str(port)]
    command += ["--threads", str(threads), "--database-url", database_url]
    env = {**os.environ, "MODELHUB_LOG_LEVEL": "warning", "MODELHUB_ACCESS_LOG": ""}
    log_path = os.path.join(workdir, "server.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start (exit {process.poll()}):\n{open(log_path).read()}")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(port: int) -> bool:
    try:
        with contextlib.closing(connect(port)) as conn:
            send(conn, "GET", f"/bench-floor/models/{model_name(0)}", None)
        return True
    except (OSError, http.client.HTTPException):
        return False


@dataclass(frozen=True)
class Endpoint:
    label: str
    method: str
    suffix: str  # after /models/{name}
    document: Callable[[int], dict] | None = None  # request number -> JSON body

    def path(self, side: str, name: str) -> str:
        return f"{'/api/models' if side == 'real' else '/bench-floor/models'}/{name}{self.suffix}"

    def body(self, i: int) -> bytes | None:
        return None if self.document is None else json.dumps(self.document(i)).encode()


ENDPOINTS = [
    Endpoint("GET /api/models/{name}", "GET", ""),
    Endpoint("PATCH /api/models/{name}/config", "PATCH", "/config", lambda i: {"compatibility_notes": f"bench {i}"}),
    Endpoint("PATCH /api/models/{name}/metadata", "PATCH", "/metadata", lambda i: {"mmlu_score": i % 1000 / 10}),
]
SIDES = ("real", "floor")


def connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.connect()
    return conn


def send(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None) -> None:
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{method} {path} answered {response.status}")


def latency_batch(port: int, endpoint: Endpoint, side: str, first: int, count: int) -> list[float]:
    """``count`` sequential requests on one keep-alive connection; the seconds each took."""
    conn, path, seconds = connect(port), endpoint.path(side, model_name(0)), []
    try:
        for i in range(first, first + count):
            body = endpoint.body(i)
            began = time.perf_counter()
            send(conn, endpoint.method, path, body)
            seconds.append(time.perf_counter() - began)
    finally:
        conn.close()
    return seconds


def throughput_batch(port: int, endpoint: Endpoint, side: str, clients: int, each: int) -> float:
    """``clients`` concurrent keep-alive clients (client c on model c+1), ``each`` requests apiece; wall seconds."""
    conns = [connect(port) for _ in range(clients)]
    bodies = [endpoint.body(i) for i in range(each)]
    go, errors = threading.Barrier(clients + 1), []

    def client(c: int) -> None:
        path = endpoint.path(side, model_name(1 + c))
        go.wait()
        try:
            for body in bodies:
                send(conns[c], endpoint.method, path, body)
        except Exception as error:  # raised below, once the clock has stopped
            errors.append(error)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    go.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for conn in conns:
        conn.close()
    if errors:
        raise errors[0]
    return elapsed


def measure(port: int, args) -> dict:
    """Warm up, then ``rounds`` rounds of real and floor batches (order flipped each round)."""
    for endpoint in ENDPOINTS:
        for side in SIDES:
            latency_batch(port, endpoint, side, 0, args.warmup)
            throughput_batch(port, endpoint, side, args.clients, max(1, args.warmup // args.clients))
    per_round = max(1, args.requests // args.rounds)
    each = max(1, per_round // args.clients)
    results = {(e.label, s): {"latency": [], "requests": 0, "seconds": 0.0} for e in ENDPOINTS for s in SIDES}
    for r in range(args.rounds):
        for endpoint in ENDPOINTS:
            for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                result = results[endpoint.label, side]
                result["latency"] += latency_batch(port, endpoint, side, r * per_round, per_round)
                result["seconds"] += throughput_batch(port, endpoint, side, args.clients, each)
                result["requests"] += args.clients * each
    return results


def summarize(result: dict) -> tuple[float, float, float]:
    """(median ms, p99 ms, requests/s)."""
    latency = sorted(result["latency"])
    p99 = latency[min(len(latency) - 1, int(0.99 * len(latency)))]
    return statistics.median(latency) * 1000, p99 * 1000, result["requests"] / result["seconds"]


def report(results: dict, args, backend: str, elapsed: float) -> bool:
    """Print the table; True when every ratio is within the target."""
    print(f"## {backend}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, loopback; gunicorn 1 worker x {args.threads} "
        f"threads; per endpoint and side {args.requests} requests for latency (1 client) and {args.requests} for "
        f"req/s ({args.clients} clients), in {args.rounds} rounds after {args.warmup} warm-up; took {elapsed:.0f} s.\n"
    )
    print("| endpoint | median ms | p99 ms | req/s | floor median ms | floor req/s | ratio (median) | ratio (req/s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for endpoint in ENDPOINTS:
        median, p99, rate = summarize(results[endpoint.label, "real"])
        floor_median, _, floor_rate = summarize(results[endpoint.label, "floor"])
        ratios = (median / floor_median, floor_rate / rate)
        worst = max(worst, *ratios)
        print(
            f"| `{endpoint.label}` | {median:.2f} | {p99:.2f} | {rate:.0f} | {floor_median:.2f} | {floor_rate:.0f} "
            f"| {ratios[0]:.2f} | {ratios[1]:.2f} |"
        )
    passed = worst <= args.target
    print(f"\n{'PASS' if passed else 'FAIL'}: worst ratio {worst:.2f} (target <= {args.target})")
    return passed


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL database to run on (default: a temporary SQLite file)")
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per endpoint, side and mode")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per endpoint, side and mode")
    parser.add_argument("--rounds", type=int, default=10, help="alternations of real and floor batches")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients for req/s")
    parser.add_argument("--threads", type=int, default=8, help="server threads (modelhub's gthread-based worker)")
    parser.add_argument("--target", type=float, default=1.5, help="highest acceptable real/floor ratio")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.database_url and not args.serve and make_url(args.database_url).get_backend_name() != "postgresql":
        parser.error("--database-url takes a PostgreSQL URL (the default, SQLite, is a temporary file)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.serve:  # the server subprocess
        from modelhub.server import serve

        serve(HOST, args.port, workers=1, threads=args.threads, load_app=partial(build_app, args.database_url))
        return 0
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelhub-bench-") as workdir:
        os.environ["MODELHUB_HOME"] = workdir  # never touch the user's own registry
        with empty_database(args.database_url, Path(workdir) / "models.db") as url:
            seed(url, 1 + args.clients)
            with running_server(url, args.threads, workdir) as port:
                results = measure(port, args)
    backend = make_url(url).get_backend_name()
    return 0 if report(results, args, backend, time.monotonic() - began) else 1


if __name__ == "__main__":
    sys.exit(main())
