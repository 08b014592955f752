"""Loading real tiny models through the API (test client) with real worker processes."""

import time

import pytest

from modelhub.app import create_app


@pytest.fixture
def loader(database_url, tmp_path, with_test_plugins, monkeypatch):
    """An app whose loads run for real; registers models and waits for their loads to end."""
    monkeypatch.setenv("MODELHUB_EXAMPLE_LOG", str(tmp_path / "example-log.jsonl"))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_LOAD_TIMEOUT": 120})
    helper = Loader(app)
    yield helper
    app.extensions["modelhub.supervisor"].shutdown()
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


class Loader:
    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def register(self, name: str, directory, load_config=None, **fields) -> dict:
        body = {"model_name": name, "cache_location": "custom", "cache_path": str(directory), **fields}
        if load_config is not None:
            body["load_config"] = load_config
        response = self.client.post("/api/models", json=body)
        assert response.status_code == 201, response.json
        return response.json

    def load(self, name: str, **options):
        return self.client.post(f"/api/models/{name}/load", json=options)

    def attempts(self, name: str) -> dict:
        response = self.client.get(f"/api/models/{name}/attempts")
        assert response.status_code == 200, response.json
        return response.json

    def wait(self, name: str, timeout: float = 120) -> dict:
        """Wait until the latest attempt has ended; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest = self.attempts(name)["items"][0]
            if latest["outcome"] != "running":
                return latest
            time.sleep(0.1)
        raise AssertionError(f"the load of {name} did not end within {timeout} s")

    def wait_for_stage(self, name: str, stage: str, timeout: float = 60) -> dict:
        """Wait until the model's worker reports ``stage`` (e.g. "loading"); return its load state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.attempts(name)["load_state"]
            if state.get("stage") == stage:
                return state
            time.sleep(0.05)
        raise AssertionError(f"{name} never reached {stage}: {state}")

    def status(self, name: str) -> str:
        return self.client.get(f"/api/models/{name}").json["compatibility_status"]

    def load_and_wait(self, name: str, **options) -> dict:
        response = self.load(name, **options)
        assert response.status_code == 202, response.json
        return self.wait(name)
