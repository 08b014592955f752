"""Fixtures for the reliability tests: a real multi-worker server, and where their figures go."""

import json
from pathlib import Path

import pytest

from tests.support import LiveServer

FIGURES = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability"


@pytest.fixture
def multi_worker_server(database_url, tmp_path):
    """``modelhub serve --workers 4``: requests land on whichever process accepts them first."""
    server = LiveServer(tmp_path / "server-home", database_url, serve_args=("--workers", "4", "--threads", "8"))
    server.start(timeout=90)
    yield server
    server.stop()


@pytest.fixture
def record_figures(request, database_url):
    """Write a test's figures to test-artifacts/reliability/<test>.json (docs/reliability.md quotes them)
    and print them, so ``pytest tests/reliability -s`` shows them."""

    def record(**figures):
        FIGURES.mkdir(parents=True, exist_ok=True)
        backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
        figures = {"backend": backend, **figures}
        name = request.node.name.replace("/", "_")
        (FIGURES / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\n{request.node.name}: {json.dumps(figures)}")

    return record
