"""Fixtures for the serving tests: a default ``modelhub serve`` shared by a module, and where figures go."""

import json
from pathlib import Path

import pytest

from tests.support import LiveServer

FIGURES = Path(__file__).resolve().parents[2] / "test-artifacts" / "serving"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``modelhub serve`` with its defaults (1 worker, 8 threads) on SQLite, shared by a module's tests."""
    live = LiveServer(tmp_path_factory.mktemp("serving") / "home")
    live.start()
    yield live
    live.stop()


@pytest.fixture
def record_figures(request):
    """Write a test's figures to test-artifacts/serving/<test>.json (docs/reliability.md quotes them)."""

    def record(**figures):
        FIGURES.mkdir(parents=True, exist_ok=True)
        (FIGURES / f"{request.node.name}.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\n{request.node.name}: {json.dumps(figures)}")

    return record
