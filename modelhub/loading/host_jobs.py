"""Loads asked of another host sharing this registry (a PostgreSQL database several hosts use).

A user on the CUDA laptop asks the ROCm desktop to load a model: the request becomes a ``host_job`` row
(queued) naming that host. Every served modelhub process polls the table for its own host's queued jobs
(``HostJobPoller``, a thread beside the lease reaper) and claims one with a guarded UPDATE (``state``
from queued to claimed): of several processes of that host (gunicorn workers, or two servers), exactly
one wins. The winner loads the model through its own supervisor, as a Load button there would.

A job's states: ``queued`` -> ``claimed`` (a process of the host took it) -> ``finished`` (the load
attempt started: ``run_id`` names it, and its outcome is the attempt's, shown beside the job while
it runs and after) or ``failed`` (the host could not start the load: the model is busy there,
incompatible without force, the ML libraries are missing there; ``error`` says why). A queued job can
be ``cancelled``; a claimed one cannot (unload the model on that host instead). The job ends when the
load starts, not when it ends, so that the poller never waits on a load and the attempt — not a copy
of it — is where its outcome lives.

A host is known once its modelhub has registered its environment (at start, by the poller), so a
request for a host that never used this registry is refused instead of waiting forever.
"""

import logging
import os
import threading
import time

from flask import Flask, current_app
from sqlalchemy import func, select, update

from modelhub import environments, registry
from modelhub.exceptions import HostJobConflict, HostJobNotFound, ModelhubError, UnknownHost
from modelhub.extensions import db
from modelhub.loading.leases import process_exists
from modelhub.loading.watcher import own_session
from modelhub.models import Environment, HostJob, LoadAttempt, ModelRegistry, utcnow

log = logging.getLogger(__name__)
POLL_EVERY = 1.0  # seconds between a served process's looks for its host's queued jobs
SEEN_EVERY = 30.0  # seconds between renewals of this host's environment.last_seen_at (GET /api/hosts)
LISTED = 100  # jobs GET /api/host-jobs lists, newest first
_LARGEST_ID = 2**31 - 1


def this_host() -> str:
    return environments.host_name(current_app.config)


# ---- what the API asks -----------------------------------------------------------------------------

def hosts() -> list[dict]:
    """Every host of this registry with its newest environment, whether it is this one, and how many
    jobs wait for it."""
    environments.current_id(current_app)  # this host is listed even before its first load
    newest: dict[str, Environment] = {}
    for environment in db.session.scalars(select(Environment).order_by(Environment.last_seen_at.desc())):
        newest.setdefault(environment.host, environment)
    waiting = dict(db.session.execute(
        select(HostJob.host, func.count()).where(HostJob.state == "queued").group_by(HostJob.host)).all())
    here = this_host()
    return [{"host": host, "this_host": host == here, "environment_id": env.id, "fingerprint": env.fingerprint,
             "description": environments.describe(env), "last_seen_at": env.last_seen_at,
             "queued_jobs": waiting.get(host, 0)}
            for host, env in sorted(newest.items())]


def known_hosts() -> list[str]:
    """Hosts whose modelhub has registered an environment here, and this one."""
    return sorted({*db.session.scalars(select(Environment.host).distinct()), this_host()})


def is_this_host(host: str | None) -> bool:
    return host is None or host == this_host()


def request_load(model_name: str, host: str, *, force: bool = False, timeout: float | None = None) -> dict:
    """Queue a load of the model for ``host``; returns the job as ``describe`` shows it. Raises
    UnknownHost (400) for a host this registry never saw, HostJobConflict (409) when the same load
    already waits for that host."""
    model = registry.get_model(model_name, for_update=True)  # two requests for the model queue here
    known = known_hosts()
    if host not in known:
        db.session.rollback()
        raise UnknownHost(host, known)
    waiting = db.session.scalar(select(HostJob.id).where(
        HostJob.model_id == model.id, HostJob.host == host, HostJob.state == "queued"))
    if waiting is not None:
        db.session.rollback()
        raise HostJobConflict(f"A load of {model_name!r} already waits for {host!r} (job {waiting}): follow it at "
                              f"GET /api/host-jobs/{waiting}, or cancel it with DELETE.")
    job = HostJob(model_id=model.id, host=host, job="load", force=force, timeout=timeout, state="queued",
                  requested_by=this_host(), requested_at=utcnow())
    db.session.add(job)
    db.session.commit()
    return describe(job)


def offered(model: ModelRegistry) -> dict:
    """What the details modal offers for asking a load of another host: the other hosts of this registry,
    and the loads of this model that still wait for theirs (the section refreshes until they are taken up)."""
    this = this_host()
    waiting = db.session.scalars(select(HostJob).where(HostJob.model_id == model.id, HostJob.state == "queued")
                                 .order_by(HostJob.id))
    return {"other_hosts": [host for host in known_hosts() if host != this],
            "hosts_waiting": [describe(job) for job in waiting]}


def get(job_id: int) -> dict:
    return describe(_job(job_id))


def listing(host: str | None = None, state: str | None = None) -> list[dict]:
    query = select(HostJob).order_by(HostJob.id.desc()).limit(LISTED)
    if host is not None:
        query = query.where(HostJob.host == host)
    if state is not None:
        query = query.where(HostJob.state == state)
    return [describe(job) for job in db.session.scalars(query)]


def cancel(job_id: int) -> dict:
    """Cancel a queued job; HostJobConflict (409) once a process of its host has claimed it."""
    _job(job_id)  # 404 first
    cancelled = db.session.execute(update(HostJob).where(HostJob.id == job_id, HostJob.state == "queued")
                                   .values(state="cancelled", finished_at=utcnow()))
    db.session.commit()
    job = _job(job_id)
    if cancelled.rowcount == 0:
        raise HostJobConflict(f"Job {job_id} is {job.state}, not queued, so it cannot be cancelled"
                              + (": unload the model instead." if job.state in ("claimed", "finished") else "."))
    return describe(job)


def describe(job: HostJob) -> dict:
    """The job as the API shows it: its columns, its model's name and its attempt's outcome now."""
    shown = {column: getattr(job, column) for column in (
        "id", "host", "job", "force", "timeout", "state", "requested_by", "requested_at", "claimed_at",
        "claimed_by_pid", "run_id", "finished_at", "error")}
    shown["model_name"] = db.session.scalar(select(ModelRegistry.model_name).where(ModelRegistry.id == job.model_id))
    shown["attempt_outcome"] = None if job.run_id is None else db.session.scalar(
        select(LoadAttempt.outcome).where(LoadAttempt.id == job.run_id))
    return shown


def _job(job_id: int) -> HostJob:
    # Beyond what a database integer holds no id can exist (and PostgreSQL would refuse the query).
    job = db.session.get(HostJob, job_id, populate_existing=True) if 0 < job_id <= _LARGEST_ID else None
    if job is None:
        raise HostJobNotFound(job_id)
    return job


# ---- what the host asked does ----------------------------------------------------------------------

def claim_next(host: str) -> HostJob | None:
    """Claim this host's oldest queued job for this process, or None. The UPDATE is guarded by the
    state read: of processes claiming the same job at once, one changes the row; the others go on to
    the next job (or find none)."""
    queued = list(db.session.scalars(select(HostJob.id).where(HostJob.host == host, HostJob.state == "queued")
                                     .order_by(HostJob.id).limit(10)))
    db.session.commit()
    for job_id in queued:
        won = db.session.execute(update(HostJob).where(HostJob.id == job_id, HostJob.state == "queued")
                                 .values(state="claimed", claimed_at=utcnow(), claimed_by_pid=os.getpid()))
        db.session.commit()
        if won.rowcount == 1:
            return db.session.get(HostJob, job_id, populate_existing=True)
    return None


def run(job: HostJob, supervisor) -> None:
    """Start the job's load through this process's supervisor; record the attempt, or why not."""
    model_name = db.session.scalar(select(ModelRegistry.model_name).where(ModelRegistry.id == job.model_id))
    try:
        attempt = supervisor.load(model_name, force=job.force, timeout=job.timeout)
    except ModelhubError as refused:  # busy here, incompatible without force, no ML stack, model gone
        db.session.rollback()
        _close(job.id, "failed", error=str(refused))
    except Exception as error:  # noqa: BLE001 - recorded on the job for the host that asked
        log.exception("host job %s: the load of %s could not start", job.id, model_name)
        db.session.rollback()
        _close(job.id, "failed", error=f"{type(error).__name__}: {error}")
    else:
        _close(job.id, "finished", run_id=attempt.id)
        log.info("host job %s from %s: loading %s (attempt %s)", job.id, job.requested_by, model_name, attempt.id)


def fail_abandoned(host: str) -> list[int]:
    """Jobs of this host claimed by a process that died before starting the load: failed, with why."""
    abandoned = []
    for job in db.session.scalars(select(HostJob).where(HostJob.host == host, HostJob.state == "claimed")):
        if job.claimed_by_pid != os.getpid() and not process_exists(job.claimed_by_pid):
            abandoned.append((job.id, job.claimed_by_pid))
    db.session.commit()
    failed = []
    for job_id, pid in abandoned:
        gone = db.session.execute(
            update(HostJob).where(HostJob.id == job_id, HostJob.state == "claimed", HostJob.claimed_by_pid == pid)
            .values(state="failed", finished_at=utcnow(),
                    error=f"The process ({pid}) that claimed this job stopped before the load started; ask again."))
        db.session.commit()
        if gone.rowcount == 1:
            failed.append(job_id)
    return failed


def _close(job_id: int, state: str, **values) -> None:
    db.session.execute(update(HostJob).where(HostJob.id == job_id, HostJob.state == "claimed")
                       .values(state=state, finished_at=utcnow(), **values))
    db.session.commit()


def mark_seen(app: Flask) -> None:
    """Renew this host's environment's last_seen_at: GET /api/hosts tells a live host from a gone one."""
    db.session.execute(update(Environment).where(Environment.id == environments.current_id(app))
                       .values(last_seen_at=utcnow()))
    db.session.commit()


class HostJobPoller:
    """In a served process: every ``POLL_EVERY`` seconds, claim and start this host's queued jobs."""

    def __init__(self, app: Flask, supervisor):
        self.app = app
        self.supervisor = supervisor
        self._last_seen = 0.0

    def start(self) -> None:
        threading.Thread(target=self._forever, daemon=True, name="modelhub-host-jobs").start()

    def _forever(self) -> None:
        while True:
            try:
                with own_session(self.app):
                    self.poll_once()
            except Exception:  # noqa: BLE001 - a busy database now is no reason to stop looking
                log.warning("could not look for this host's queued loads", exc_info=True)
            time.sleep(POLL_EVERY)

    def poll_once(self) -> list[int]:
        """One look (needs an app context): returns the ids of the jobs this process claimed."""
        if time.monotonic() - self._last_seen >= SEEN_EVERY:
            mark_seen(self.app)  # also registers this host's environment at start: it becomes known
            self._last_seen = time.monotonic()
        host = environments.host_name(self.app.config)
        fail_abandoned(host)
        claimed = []
        while (job := claim_next(host)) is not None:
            claimed.append(job.id)
            run(job, self.supervisor)
        return claimed
