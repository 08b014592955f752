"""This host's Retest with real loads of tiny models: after an upgrade (a changed fingerprint, simulated by
another reported transformers version), the models whose results here are only from the old
environment are loaded again one after another, get a result in the new one, are unloaded again unless
they were loaded before; progress reaches the total, Stop works between models, and one retest runs per
host (whichever process is asked)."""

import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from modelhub import compatibility, environments
from modelhub.extensions import db
from modelhub.loading import retest
from modelhub.models import LoadAttempt, ModelRegistry, RetestState, WorkerLease


def upgrade(app, monkeypatch, version="99.0.0") -> None:
    """What a `pip install -U transformers` and a restart do to this host's fingerprint."""
    real = environments.library_versions()
    monkeypatch.setattr(environments, "library_versions", lambda: {**real, "transformers": version})
    environments.forget_cached(app)


def retest_status(loader) -> dict:
    response = loader.client.get("/api/retest")
    assert response.status_code == 200, response.json
    return response.json


def wait_until_over(loader, timeout=240) -> dict:
    deadline = time.monotonic() + timeout
    while (status := retest_status(loader))["state"] == "running":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    return status


class LeaseWatch:
    """Samples the worker leases while a retest runs: how many models were loading (and loaded) at once."""

    def __init__(self, app):
        self.app, self.most_loading, self.most_held, self.running = app, 0, 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        with self.app.app_context():
            while self.running:
                states = list(db.session.scalars(select(WorkerLease.state)))
                db.session.commit()
                self.most_loading = max(self.most_loading, states.count("loading"))
                self.most_held = max(self.most_held, len(states))
                time.sleep(0.02)
            db.session.remove()

    def stop(self):
        self.running = False
        self.thread.join()


def retest_attempts(app, environment_id) -> list[LoadAttempt]:
    with app.app_context():
        return list(db.session.scalars(select(LoadAttempt).where(LoadAttempt.environment_id == environment_id)
                                       .order_by(LoadAttempt.id)))


def test_a_retest_loads_each_stale_model_again_one_at_a_time(loader, tiny_models, monkeypatch):
    app = loader.app
    app.extensions["modelhub.supervisor"].max_loaded = 2
    loader.register("tiny/a", tiny_models["llama"])
    loader.register("tiny/b", tiny_models["gpt2"])
    loader.register("tiny/never", tiny_models["phi"])  # no result here at all: nothing to retest
    assert loader.load_and_wait("tiny/a")["outcome"] == "success"
    assert loader.client.post("/api/models/tiny/a/unload").status_code == 200
    assert loader.load_and_wait("tiny/b")["outcome"] == "success"  # stays loaded through the retest
    with app.app_context():
        before = environments.current_id(app)
    assert retest_status(loader) == {"host": retest_status(loader)["host"], "state": "idle", "done": 0, "total": 0,
                                     "current": None, "stop_requested": False, "results": [], "needing": []}

    upgrade(app, monkeypatch)
    assert retest_status(loader)["needing"] == ["tiny/a", "tiny/b"]
    watch = LeaseWatch(app)

    started = loader.client.post("/api/retest")

    assert started.status_code == 202, started.json
    assert started.headers["Location"] == "/api/retest"
    assert started.json["state"] == "running" and started.json["total"] == 2
    assert loader.client.post("/api/retest").status_code == 409  # one retest per host
    status = wait_until_over(loader)
    watch.stop()
    assert status["state"] == "finished", status
    assert (status["done"], status["total"], status["current"], status["needing"]) == (2, 2, None, [])
    assert [(r["model_name"], r["outcome"], r["status"]) for r in status["results"]] == [
        ("tiny/a", "success", "compatible"), ("tiny/b", "success", "compatible")]
    with app.app_context():
        after = environments.current_id(app)
        assert compatibility.needing_retest(app) == []
    assert after != before
    first, second = retest_attempts(app, after)
    assert [first.id, second.id] == [r["attempt_id"] for r in status["results"]]
    assert first.finished_at <= second.started_at  # never two loads at once
    assert watch.most_loading == 1 and watch.most_held <= 2
    assert loader.attempts("tiny/a")["load_state"] == {"state": "idle"}  # unloaded again, as before
    assert loader.attempts("tiny/b")["load_state"]["state"] == "loaded"  # loaded before: stays loaded
    assert loader.attempts("tiny/never")["items"] == []


def test_stop_ends_the_retest_after_the_model_loading_now(loader, tiny_models, monkeypatch):
    app = loader.app
    loader.register("tiny/slow", tiny_models["llama"], load_config={"fault_hang_seconds": 3})
    loader.register("tiny/z", tiny_models["gpt2"])
    for name in ("tiny/slow", "tiny/z"):
        assert loader.load_and_wait(name)["outcome"] == "success"
    upgrade(app, monkeypatch)
    assert loader.client.post("/api/retest").status_code == 202
    deadline = time.monotonic() + 60
    while retest_status(loader)["current"] != "tiny/slow":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    stopping = loader.client.delete("/api/retest")

    assert stopping.status_code == 200 and stopping.json["stop_requested"] is True
    assert stopping.json["state"] == "running"  # the load in progress ends as it would
    status = wait_until_over(loader)
    assert status["state"] == "stopped" and (status["done"], status["total"]) == (1, 2)
    assert [(r["model_name"], r["outcome"]) for r in status["results"]] == [("tiny/slow", "success")]
    assert status["needing"] == ["tiny/z"]
    with app.app_context():
        assert [a.model_id for a in retest_attempts(app, environments.current_id(app))] == [
            db.session.scalar(select(ModelRegistry.id).where(ModelRegistry.model_name == "tiny/slow"))]
    assert loader.client.delete("/api/retest").status_code == 409  # nothing runs now
    assert retest_status(loader)["state"] == "stopped"


@pytest.fixture
def runner_app(app):
    app.config["MODELHUB_HOST_NAME"] = "gpu-box"
    return app


def test_a_retest_another_live_process_runs_is_a_409_and_a_dead_ones_reads_as_failed(runner_app):
    client = runner_app.test_client()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            with runner_app.app_context():
                db.session.add(RetestState(host="gpu-box", state="running", done=1, total=3, current="org/m",
                                           results=[], owner_pid=other.pid, started_at=time.time()))
                db.session.commit()

            refused = client.post("/api/retest")

            assert refused.status_code == 409 and "already running" in refused.json["message"]
            assert client.get("/api/retest").json["state"] == "running"
            banner = client.get("/retest/status").get_data(as_text=True)
            assert "Retesting on this host" in banner and "1 / 3 models" in banner and "org/m" in banner
            stop = client.delete("/api/retest")  # asked of this process, heard by the one running it
            assert stop.status_code == 200 and stop.json["stop_requested"] is True
        finally:
            other.kill()
            other.wait()
    shown = client.get("/api/retest").json
    assert shown["state"] == "failed" and shown["error"] == retest.INTERRUPTED
    assert client.delete("/api/retest").status_code == 409
    # The dead process's retest is over: a new one is no longer "already running" (here nothing needs one).
    nothing = client.post("/api/retest")
    assert nothing.status_code == 409 and nothing.json["message"].startswith("No model needs a retest on this host")
    assert client.get("/api/retest").json["state"] == "failed"  # nothing started


def test_the_banner_says_how_many_models_need_a_retest(runner_app, monkeypatch):
    client = runner_app.test_client()
    monkeypatch.setattr(compatibility, "needing_retest", lambda app: ["org/a", "org/b"])
    page = client.get("/models").get_data(as_text=True)
    assert 'hx-get="/retest/status"' in page  # the page fetches the banner once it has loaded

    banner = client.get("/retest/status").get_data(as_text=True)

    assert "2 models need a retest on this host" in banner and ">Retest</button>" in banner
    monkeypatch.setattr(compatibility, "needing_retest", lambda app: ["org/a"])
    assert "1 model needs a retest on this host" in client.get("/retest/status").get_data(as_text=True)
    monkeypatch.setattr(compatibility, "needing_retest", lambda app: [])
    quiet = client.get("/retest/status").get_data(as_text=True)
    assert "need" not in quiet and "Retest" not in quiet
    assert "No retest is running" in client.post("/retest/stop").get_data(as_text=True)


def test_a_retest_without_the_ml_libraries_is_refused_before_it_starts(runner_app, monkeypatch):
    client = runner_app.test_client()
    monkeypatch.setattr(compatibility, "needing_retest", lambda app: ["org/a", "org/b"])
    monkeypatch.setattr("modelhub.loading.ml_stack.missing", lambda: ["torch"])
    refused = client.post("/api/retest")
    assert refused.status_code == 409 and 'pip install "modelhub[ml]"' in refused.json["message"], refused.json
    assert client.get("/api/retest").json["state"] == "idle"  # nothing started, no model tried
