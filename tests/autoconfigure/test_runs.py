"""An auto-configure run's record: one running run per model, even when starts race."""

import threading

import pytest

from modelhub import registry
from modelhub.autoconfigure import runs
from modelhub.exceptions import AutoconfigureConflict
from modelhub.extensions import db
from modelhub.models import AutoconfigureRun


def test_starts_racing_on_one_model_open_one_run(app):
    with app.app_context():
        registry.create_model({"model_name": "org/racer"})
        db.session.remove()
    opened, refused, errors = [], [], []
    barrier = threading.Barrier(6)

    def start():
        with app.app_context():
            barrier.wait()
            try:
                opened.append(runs.begin(app, "org/racer", max_tries=3, max_seconds=60, apply=False).id)
            except AutoconfigureConflict as conflict:
                refused.append(str(conflict))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(opened) == 1 and len(refused) == 5, (opened, refused, errors)
    assert "already running" in refused[0]
    with app.app_context():
        assert db.session.query(AutoconfigureRun).count() == 1
        runs.finish(opened[0], "stopped", result_reason="test")
        assert runs.get(opened[0]).state == "stopped"
        # Closed once: a second ending changes nothing.
        assert runs.finish(opened[0], "failed") is None
        assert runs.get(opened[0]).state == "stopped"


def test_a_run_left_running_by_a_dead_process_reads_interrupted(app):
    with app.app_context():
        model = registry.create_model({"model_name": "org/orphan"})
        run = AutoconfigureRun(model_id=model.id, host=app.config.get("MODELHUB_HOST_NAME") or _host(app),
                               tries=[], max_tries=3, max_seconds=60, owner_pid=2**22 + 12345)
        db.session.add(run)
        db.session.commit()
        assert runs.get(run.id).state == "interrupted"
        # ... and a new run may start on the model.
        assert runs.begin(app, "org/orphan", max_tries=3, max_seconds=60, apply=False).state == "running"


def _host(app):
    from modelhub import environments

    return environments.host_name(app.config)


@pytest.fixture
def app(app):
    return app
