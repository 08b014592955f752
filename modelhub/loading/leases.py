"""Who runs which model's worker: leases in the registry database, so that every web process (and
every host sharing a PostgreSQL registry) gives the same answer and no model is loaded twice.

- A load or measurement claims the model's lease in the transaction that opens its run; the
  table's primary key makes a second claim fail, whichever process or host makes it (HTTP 409).
- The owner keeps the lease's stage and heartbeat current, and polls it: another process asks it to
  stop a worker by writing ``stop_reason``; a lease that disappeared (its model was deleted) stops the
  worker too.
- A lease whose owner died is stale: on the same host, its pid is gone; on another host, its heartbeat
  is older than ``STALE_AFTER``. Whoever meets a stale lease reclaims it: deletes it and closes its run as
  interrupted. Served processes look for such leases every ``REAP_EVERY`` seconds, so a load whose web
  process was killed ends (interrupted) without waiting for anyone to ask about it.

The supervisor asks one question at each step of a load and gets a ``Claim`` back: who holds the
model now (``holder``), which other leases of this host are live (``others_here``), whether an owner
asked to stop has let go (``stop_and_wait``), and, last, the claim itself (``claim``); the reaper and
the start-up ask which owners are dead (``take_over_dead``). Each answer is granted, free, busy here,
busy elsewhere, or taken over (the owner was dead: this call removed the lease, and the caller closes
its run, which only the run's job kind knows how to).

Every function is its own short transaction unless it says it only adds to the caller's.
"""

import os
import socket
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from modelhub import registry
from modelhub.exceptions import WriteContention
from modelhub.extensions import db
from modelhub.loading.claim import (
    BUSY_ELSEWHERE,
    BUSY_HERE,
    FREE,
    GRANTED,
    TAKEN_OVER,
    Claim,
)
from modelhub.models import ModelRegistry, WorkerLease, utcnow

POLL_EVERY = 0.5  # seconds between an owner's looks at its leases (how soon a remote unload is seen)
HEARTBEAT_EVERY = 10.0
STALE_AFTER = 60.0  # no heartbeat for this long: the owner is gone (it may be on another host)
DEADLINE_GRACE = 2.0  # a loading lease this long past its timeout: the owner is gone
REAP_EVERY = 2.0  # seconds between a served process's looks for leases of dead owners


def me() -> tuple[str, int]:
    """This web process: computed at each call, since gunicorn forks workers after import."""
    return socket.gethostname(), os.getpid()


def owner_name(lease: WorkerLease) -> str:
    return f"process {lease.owner_pid} on {lease.host}"


def is_stale(lease: WorkerLease, *, mine_known: bool = True) -> bool:
    """True when the owner is gone. ``mine_known``: for a lease of this very process, whether this
    process still runs its worker (a lease of ours it does not know is a leftover)."""
    host, pid = me()
    if lease.host == host:
        if lease.owner_pid == pid:
            return not mine_known
        return not process_exists(lease.owner_pid)
    if lease.state == "loading" and lease.deadline_at is not None and seconds_since(lease.deadline_at) > DEADLINE_GRACE:
        return True  # a live owner would have timed the load out by now
    return seconds_since(lease.heartbeat_at) > STALE_AFTER


def holder(model_id: int, *, runs_here) -> Claim:
    """Who holds the model's lease now: FREE, BUSY_HERE, BUSY_ELSEWHERE, or TAKEN_OVER from a dead
    owner. ``runs_here(lease)``: whether this process still runs (or is starting) the lease's worker."""
    return _look(_current(model_id), runs_here)


def others_here(model_id: int, *, runs_here) -> list[Claim]:
    """The other models' leases on this host (the ones that share its memory), each looked at as
    ``holder`` does: the live ones are busy, dead owners' are taken over."""
    host, _pid = me()
    on_this_host = db.session.scalars(
        select(WorkerLease).where(WorkerLease.host == host).execution_options(populate_existing=True))
    return [_look(lease, runs_here) for lease in list(on_this_host) if lease.model_id != model_id]


def take_over_dead(*, runs_here) -> list[WorkerLease]:
    """Every lease whose owner is gone, taken over by this call (the caller closes their runs)."""
    return [claim.lease for claim in (_look(lease, runs_here) for lease in every_lease())
            if claim.taken_over]


def stop_and_wait(lease: WorkerLease, reason: str, *, wait: float, runs_here) -> Claim:
    """Ask the lease's owner (another process, or another host) to end its worker, and wait until it
    has: FREE once the lease is gone, TAKEN_OVER if the owner died meanwhile, or BUSY_ELSEWHERE if
    it still holds the lease after ``wait`` seconds."""
    db.session.execute(
        update(WorkerLease)
        .where(WorkerLease.model_id == lease.model_id, WorkerLease.host == lease.host,
               WorkerLease.owner_pid == lease.owner_pid)
        .values(stop_reason=reason)
    )
    db.session.commit()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        now = _current(lease.model_id)
        db.session.commit()
        if now is None or now.run_id != lease.run_id:
            return Claim(FREE, lease)
        answer = _look(now, runs_here)
        if not answer.busy:
            return answer
        time.sleep(POLL_EVERY / 2)
    return Claim(BUSY_ELSEWHERE, lease)


def claim(model: ModelRegistry, job: str, timeout: float, *, open_run) -> Claim:
    """Claim the model's lease for ``job`` (a JobKind's name) in the transaction that opens the job's
    run. The model's row is locked and read again first: two claims of one model, in any processes,
    queue there and the second sees the first's lease, and the run starts from the newest row.

    ``open_run(model, add_lease)`` opens the run on that row (or raises to refuse; the transaction is
    rolled back), calls ``add_lease(run_id)`` and commits. Returns GRANTED with what it returned, or
    BUSY_HERE / BUSY_ELSEWHERE with the lease in the way (None: another claim won at the commit).
    Raises WriteContention if the model keeps being edited under it."""
    for _ in range(registry.UNGUARDED_WRITE_ATTEMPTS):
        locked = registry.get_model(model.model_name, for_update=True)
        lease = _current(locked.id)
        if lease is not None:
            db.session.rollback()
            return Claim(BUSY_HERE if (lease.host, lease.owner_pid) == me() else BUSY_ELSEWHERE, lease)
        try:
            return Claim(GRANTED, opened=open_run(locked, partial(_add, locked, job, timeout=timeout)))
        except IntegrityError:
            db.session.rollback()  # another request claimed the lease first
            return Claim(BUSY_ELSEWHERE)
        except StaleDataError:
            db.session.rollback()  # the model was edited meanwhile: look again at the newest row
        except Exception:
            db.session.rollback()  # refused: nothing of it stays
            raise
    raise WriteContention(f"could not start loading {model.model_name!r}; retry shortly.")


def every_lease() -> list[WorkerLease]:
    return list(db.session.scalars(select(WorkerLease).execution_options(populate_existing=True)))


def by_model_name() -> dict[str, WorkerLease]:
    """Every lease, by model name, in one query (the Models page shows a state on each card)."""
    rows = db.session.execute(select(ModelRegistry.model_name, WorkerLease).join(
        WorkerLease, WorkerLease.model_id == ModelRegistry.id))
    return {name: lease for name, lease in rows}


def _current(model_id: int) -> WorkerLease | None:
    """The model's lease as stored now (not as this session last saw it)."""
    return db.session.scalar(
        select(WorkerLease).where(WorkerLease.model_id == model_id).execution_options(populate_existing=True)
    )


def _look(lease: WorkerLease | None, runs_here) -> Claim:
    if lease is None:
        return Claim(FREE)
    if not is_stale(lease, mine_known=runs_here(lease)):
        return Claim(BUSY_HERE if (lease.host, lease.owner_pid) == me() else BUSY_ELSEWHERE, lease)
    return Claim(TAKEN_OVER if _take_over(lease) else FREE, lease)  # FREE: someone else took it over first


def _add(model: ModelRegistry, job: str, run_id: int, timeout: float) -> None:
    """Add the model's lease to the caller's transaction (its commit fails if another claim won)."""
    host, pid = me()
    now = utcnow()
    db.session.add(WorkerLease(model_id=model.id, job=job, state="loading", run_id=run_id, stage="starting",
                               host=host, owner_pid=pid, started_at=now, heartbeat_at=now,
                               deadline_at=now + timedelta(seconds=timeout)))


# The owner's own changes name the run too: a late call about an ended run never touches the lease
# of the model's next run.

def set_stage(model_id: int, run_id: int, stage: str, worker_pid: int | None = None) -> None:
    """Add the stage change to the caller's transaction."""
    values = {"stage": stage, "heartbeat_at": utcnow()}
    if worker_pid is not None:
        values["worker_pid"] = worker_pid
    db.session.execute(_mine(update(WorkerLease), model_id, run_id).values(**values))


def mark_loaded(model_id: int, run_id: int) -> None:
    """Add "the model is loaded and stays" to the caller's transaction."""
    db.session.execute(
        _mine(update(WorkerLease), model_id, run_id).values(state="loaded", stage=None, heartbeat_at=utcnow())
    )


def release_in_transaction(model_id: int, run_id: int) -> None:
    """Add the lease's removal to the caller's transaction."""
    db.session.execute(_mine(delete(WorkerLease), model_id, run_id))


def release(model_id: int, run_id: int) -> None:
    release_in_transaction(model_id, run_id)
    db.session.commit()


GONE = "stopped because its model was deleted or another process took its lease over"


def poll(model_id: int, run_id: int, *, beat: bool) -> str | None:
    """The owner's look at its lease: None to carry on, else why the worker must stop. ``beat`` also
    renews the heartbeat."""
    if beat:
        renewed = db.session.execute(_mine(update(WorkerLease), model_id, run_id).values(heartbeat_at=utcnow()))
        db.session.commit()
        if renewed.rowcount == 0:
            return GONE
    row = db.session.execute(_mine(select(WorkerLease.stop_reason), model_id, run_id)).first()
    db.session.commit()  # end the read transaction: nothing is held while the worker runs
    return GONE if row is None else row.stop_reason


def _take_over(lease: WorkerLease) -> bool:
    """Delete a stale lease; True if this call removed it (so its run is ours to close)."""
    removed = db.session.execute(
        delete(WorkerLease).where(WorkerLease.model_id == lease.model_id, WorkerLease.host == lease.host,
                                  WorkerLease.owner_pid == lease.owner_pid, WorkerLease.run_id == lease.run_id)
    )
    db.session.commit()
    return removed.rowcount == 1


def _mine(statement, model_id: int, run_id: int):
    host, pid = me()
    return statement.where(WorkerLease.model_id == model_id, WorkerLease.run_id == run_id,
                           WorkerLease.host == host, WorkerLease.owner_pid == pid)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process whose parent died too may wait a while to be reaped: it is dead all the same."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (macOS): trust kill(0)
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def seconds_since(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # SQLite gives back naive datetimes (stored as UTC)
    return (utcnow() - moment).total_seconds()
