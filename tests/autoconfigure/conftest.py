"""Auto-configure runs with real loads: the test plugins provoke each failure in real worker processes."""

import time

import pytest

from modelhub.app import create_app
from tests.loading.conftest import Loader


class Searcher(Loader):
    def autoconfigure(self, name: str, **options):
        return self.client.post(f"/api/models/{name}/autoconfigure", json=options)

    def wait_for_run(self, name: str, timeout: float = 240) -> dict:
        """Wait until the model's newest run has ended; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.client.get(f"/api/models/{name}/autoconfigure").json["items"][0]
            if run["state"] != "running":
                return run
            time.sleep(0.2)
        raise AssertionError(f"the auto-configure run of {name} did not end within {timeout} s")


@pytest.fixture
def searcher(database_url, tmp_path, with_test_plugins, monkeypatch):
    monkeypatch.setenv("MODELHUB_EXAMPLE_LOG", str(tmp_path / "example-log.jsonl"))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_LOAD_TIMEOUT": 120,
                      "MODELHUB_HOME": str(tmp_path / "home")})
    helper = Searcher(app)
    yield helper
    app.extensions["modelhub.supervisor"].shutdown()
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()
