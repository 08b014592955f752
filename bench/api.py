"""API latency benchmark: the real endpoints against a "floor" doing the same database work.

Measures, on a real server (``modelhub.server.serve``: gunicorn, 1 worker, N threads) bound to
127.0.0.1, the median and p99 latency (one sequential keep-alive client) and the requests/s (a few
concurrent keep-alive clients) of

    GET   /api/models/{name}
    PATCH /api/models/{name}/config     {"compatibility_notes": "bench <i>"}
    PATCH /api/models/{name}/metadata   {"mmlu_score": <varying float>}

each next to a floor endpoint served by the same process, app and SQLAlchemy session
(``modelhub.extensions.db``) that does the same SQL without validation or serialization: one
``SELECT * ... WHERE model_name = ?`` answering a fixed ``ok`` for GET; for a PATCH that SELECT, then
``UPDATE ... SET <col> = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`` and
COMMIT (the statement the ORM sends for the real PATCH). Real and floor batches alternate, round by
round, so machine noise hits both alike. The ratios real/floor are checked against ``--target``.

The database is a temporary SQLite file, or with ``--database-url`` a fresh schema (dropped at the
end) in a PostgreSQL database. It holds 1000 filler models plus one per client.

    .venv/bin/python bench/api.py
    .venv/bin/python bench/api.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Exit status 0 when every ratio is within the target, 1 otherwise. Not a test: nothing runs it in CI.
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
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from flask import Blueprint, request
from sqlalchemy import DateTime, bindparam, create_engine, insert, text
from sqlalchemy.engine import make_url

from modelhub.extensions import db

HOST = "127.0.0.1"
FILLER_MODELS = 1000
WRITE_ATTEMPTS = 20  # as registry.UNGUARDED_WRITE_ATTEMPTS: retry a write that lost a version race

# --- the floor: bare views in the served app --------------------------------------------------------

floor = Blueprint("bench_floor", __name__, url_prefix="/bench-floor")
SELECT_ROW = text("SELECT * FROM modelregistry WHERE model_name = :name")
UPDATES = {
    column: text(
        f"UPDATE modelregistry SET {column} = :value, updated_at = :now, version = version + 1 "
        "WHERE id = :id AND version = :version"
    ).bindparams(bindparam("now", type_=DateTime(timezone=True)))
    for column in ("compatibility_notes", "mmlu_score")
}


@floor.get("/models/<path:name>")
def floor_get(name):
    row = db.session.execute(SELECT_ROW, {"name": name}).first()
    return ("ok", 200) if row is not None else ("missing", 404)


@floor.patch("/models/<path:name>/config")
def floor_config(name):
    return _floor_update(name, "compatibility_notes")


@floor.patch("/models/<path:name>/metadata")
def floor_metadata(name):
    return _floor_update(name, "mmlu_score")


def _floor_update(name: str, column: str):
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
    """The app the server runs: modelhub's own, plus the floor views."""
    from modelhub.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_AUTO_UPGRADE": False})
    app.register_blueprint(floor)
    return app


# --- set-up: database, data, server -----------------------------------------------------------------


def model_name(i: int) -> str:
    return f"bench-org/model-{i}"


@contextlib.contextmanager
def database(base_url: str | None, workdir: str):
    """A temporary SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if not base_url or base_url.startswith("sqlite"):
        yield f"sqlite:///{os.path.join(workdir, 'models.db')}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed(database_url: str, own_models: int) -> None:
    """Create the schema (migrations) and register the benchmark's models and the filler."""
    from modelhub.app import create_app
    from modelhub.models import ModelRegistry

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        names = [model_name(i) for i in range(own_models)] + [f"filler-org/model-{i}" for i in range(FILLER_MODELS)]
        db.session.execute(insert(ModelRegistry), [{"model_name": n, "hf_path": n} for n in names])
        db.session.commit()
        db.engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(database_url: str, threads: int, workdir: str, timeout: float = 30):
    """Start this script with --serve in a subprocess; always stop it."""
    port = free_port()
    command = [sys.executable, os.path.abspath(__file__), "--serve", "--port", str(port)]
    command += ["--threads", str(threads), "--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if k != "MODELHUB_ACCESS_LOG"}
    env["MODELHUB_LOG_LEVEL"] = "warning"
    log_path = os.path.join(workdir, "server.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_up(process, port, timeout, log_path)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(process, port: int, timeout: float, log_path: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{open(log_path).read()}")
        with contextlib.suppress(OSError):
            conn = connect(port)
            send(conn, "GET", f"/bench-floor/models/{model_name(0)}", None)
            conn.close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer within {timeout} s:\n{open(log_path).read()}")


# --- load generation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    label: str
    method: str
    suffix: str  # after /models/{name}
    body: staticmethod  # i -> JSON bytes, or None for no body

    def path(self, side: str, name: str) -> str:
        prefix = "/api/models" if side == "real" else "/bench-floor/models"
        return f"{prefix}/{name}{self.suffix}"


ENDPOINTS = [
    Endpoint("GET /api/models/{name}", "GET", "", lambda i: None),
    Endpoint("PATCH /api/models/{name}/config", "PATCH", "/config",
             lambda i: json.dumps({"compatibility_notes": f"bench {i}"}).encode()),
    Endpoint("PATCH /api/models/{name}/metadata", "PATCH", "/metadata",
             lambda i: json.dumps({"mmlu_score": (i % 1000) / 10}).encode()),
]
SIDES = ("real", "floor")


def connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.connect()
    return conn


def send(conn, method: str, path: str, body: bytes | None) -> None:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{method} {path} answered {response.status}")


def latency_batch(port: int, endpoint: Endpoint, side: str, start: int, count: int) -> list[float]:
    """``count`` sequential requests on one keep-alive connection; seconds per request."""
    conn, path, seconds = connect(port), endpoint.path(side, model_name(0)), []
    try:
        for i in range(start, start + count):
            body = endpoint.body(i)
            began = time.perf_counter()
            send(conn, endpoint.method, path, body)
            seconds.append(time.perf_counter() - began)
    finally:
        conn.close()
    return seconds


def throughput_batch(port: int, endpoint: Endpoint, side: str, clients: int, each: int) -> float:
    """``clients`` concurrent keep-alive clients (model i for client i), ``each`` requests apiece; wall seconds."""
    conns = [connect(port) for _ in range(clients)]
    bodies = [endpoint.body(i) for i in range(each)]
    start, errors = threading.Barrier(clients + 1), []

    def client(c: int) -> None:
        path = endpoint.path(side, model_name(1 + c))
        start.wait()
        try:
            for body in bodies:
                send(conns[c], endpoint.method, path, body)
        except Exception as error:  # reported below, after the clock stops
            errors.append(error)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
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
    """Warm up, then ``rounds`` rounds alternating real/floor batches; samples per (endpoint, side)."""
    for endpoint in ENDPOINTS:
        for side in SIDES:
            latency_batch(port, endpoint, side, 0, args.warmup)
            throughput_batch(port, endpoint, side, args.clients, max(1, args.warmup // args.clients))
    per_round = max(1, args.requests // args.rounds)
    each = max(1, per_round // args.clients)
    results = {(e.label, s): {"latency": [], "requests": 0, "seconds": 0.0} for e in ENDPOINTS for s in SIDES}
    for r in range(args.rounds):
        for endpoint in ENDPOINTS:
            for side in SIDES if r % 2 == 0 else reversed(SIDES):
                result = results[endpoint.label, side]
                result["latency"] += latency_batch(port, endpoint, side, r * per_round, per_round)
                result["seconds"] += throughput_batch(port, endpoint, side, args.clients, each)
                result["requests"] += args.clients * each
    return results


# --- report ------------------------------------------------------------------------------------------


def summarize(result: dict) -> tuple[float, float, float]:
    """(median ms, p99 ms, requests/s)."""
    latency = sorted(result["latency"])
    p99 = latency[min(len(latency) - 1, int(0.99 * len(latency)))]
    return statistics.median(latency) * 1000, p99 * 1000, result["requests"] / result["seconds"]


def report(results: dict, args, backend: str, elapsed: float) -> bool:
    print(f"## API latency: {backend}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, loopback; "
          f"gunicorn 1 worker x {args.threads} threads; {args.requests} requests per endpoint and side for "
          f"latency (1 client) and again for req/s ({args.clients} clients), {args.rounds} rounds; "
          f"run took {elapsed:.0f} s.\n")
    print("| endpoint | median ms | p99 ms | req/s | floor median ms | floor req/s | ratio (median) | ratio (req/s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for endpoint in ENDPOINTS:
        median, p99, rate = summarize(results[endpoint.label, "real"])
        floor_median, _, floor_rate = summarize(results[endpoint.label, "floor"])
        ratios = (median / floor_median, floor_rate / rate)
        worst = max(worst, *ratios)
        print(f"| `{endpoint.label}` | {median:.2f} | {p99:.2f} | {rate:.0f} | {floor_median:.2f} | "
              f"{floor_rate:.0f} | {ratios[0]:.2f} | {ratios[1]:.2f} |")
    passed = worst <= args.target
    print(f"\n{'PASS' if passed else 'FAIL'}: worst ratio {worst:.2f} (target <= {args.target})")
    return passed


# --- entry points ------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL database to benchmark on (default: temporary SQLite)")
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per endpoint and side")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per endpoint and side")
    parser.add_argument("--rounds", type=int, default=10, help="real/floor alternations")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients for req/s")
    parser.add_argument("--threads", type=int, default=8, help="server threads (gunicorn gthread)")
    parser.add_argument("--target", type=float, default=1.5, help="highest acceptable real/floor ratio")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.serve:
        from modelhub.server import serve

        serve(HOST, args.port, workers=1, threads=args.threads, load_app=partial(build_app, args.database_url))
        return 0
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelhub-bench-") as workdir:
        os.environ["MODELHUB_HOME"] = workdir  # never the user's own registry
        with database(args.database_url, workdir) as url:
            seed(url, 1 + args.clients)
            with running_server(url, args.threads, workdir) as port:
                results = measure(port, args)
    backend = make_url(url).get_backend_name()
    return 0 if report(results, args, backend, time.monotonic() - began) else 1


if __name__ == "__main__":
    sys.exit(main())
