"""The leases' answers, without a worker: who holds a model (free, busy here, busy elsewhere, taken
over from a dead owner), and a claim that opens its run in the same transaction, or says why not."""

import subprocess
import sys

import pytest
from sqlalchemy import select

from modelhub import registry
from modelhub.exceptions import LoadConflict
from modelhub.extensions import db
from modelhub.loading import leases
from modelhub.loading.jobs import KINDS, LOAD, MEASURE
from modelhub.models import WORKER_JOBS, LoadAttempt, Measurement, WorkerLease


@pytest.fixture
def model(app):
    with app.app_context():
        yield registry.create_model({"model_name": "tiny/llama"})


def _claim(model, kind=LOAD, settings=None):
    return leases.claim(model, kind.name, 60.0, open_run=lambda locked, add_lease: kind.begin(locked, settings, add_lease))


def _here(_lease):
    return True


def test_every_job_kind_is_a_wire_value_the_database_and_the_api_know():
    assert tuple(KINDS) == WORKER_JOBS
    assert [kind.keeps_worker for kind in KINDS.values()] == [True, False]  # a load stays, a measurement ends


def test_a_free_model_is_claimed_with_its_run_in_one_transaction(model):
    assert leases.holder(model.id, runs_here=_here).outcome == leases.FREE
    claim = _claim(model)
    assert claim.granted
    db.session.expire_all()
    lease = db.session.get(WorkerLease, model.id)
    assert (lease.job, lease.run_id, lease.state) == ("load", claim.opened.id, "loading")
    assert registry.get_model("tiny/llama").compatibility_status == "testing"


def test_a_second_claim_is_told_who_holds_the_model_and_opens_nothing(model):
    first = _claim(model)
    second = _claim(model, MEASURE, {})
    assert second.outcome == leases.BUSY_HERE and second.lease.run_id == first.opened.id
    assert db.session.scalars(select(Measurement)).all() == []
    assert leases.holder(model.id, runs_here=_here).outcome == leases.BUSY_HERE


def test_a_lease_of_another_live_process_is_busy_elsewhere(model):
    _claim(model)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        try:
            db.session.execute(db.update(WorkerLease).values(owner_pid=other.pid))
            db.session.commit()
            assert leases.holder(model.id, runs_here=_here).outcome == leases.BUSY_ELSEWHERE
            assert _claim(model).outcome == leases.BUSY_ELSEWHERE
        finally:
            other.kill()


def test_a_dead_owners_lease_is_taken_over_once_and_its_run_left_to_the_caller(model):
    run = _claim(model).opened
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        gone.wait()
    db.session.execute(db.update(WorkerLease).values(owner_pid=gone.pid))
    db.session.commit()
    taken = leases.holder(model.id, runs_here=_here)
    assert taken.taken_over and taken.lease.run_id == run.id
    assert leases.holder(model.id, runs_here=_here).outcome == leases.FREE
    assert db.session.get(LoadAttempt, run.id).outcome == "running"  # closing it is the caller's (its kind's)
    assert LOAD.interrupt(run.id, plugins=None).outcome == "interrupted"


def test_a_refusal_while_claiming_leaves_nothing_behind(model):
    def refuse(locked, add_lease):
        locked.compatibility_status = "testing"
        raise LoadConflict("no")

    with pytest.raises(LoadConflict):
        leases.claim(model, "load", 60.0, open_run=refuse)
    db.session.expire_all()
    assert registry.get_model("tiny/llama").compatibility_status == "unknown"
    assert db.session.get(WorkerLease, model.id) is None
