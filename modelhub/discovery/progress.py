"""A host's scan state in the database (table ``scan_state``, one row per host), so that whichever web
process a request reaches, it shows the same progress, and a second scan on the host is refused.

Each function is its own short transaction. A ``running`` row whose process is gone (the server was
killed mid-scan) reads as failed, and may be claimed again.
"""

import time

from sqlalchemy import update

from modelhub import host_state
from modelhub.extensions import db
from modelhub.loading.leases import me, process_exists
from modelhub.models import ScanState

IDLE = {"state": "idle", "done": 0, "total": 0}
INTERRUPTED = "Interrupted: the server process that ran this scan stopped."


def read(scanning_here: bool) -> dict:
    """This host's scan status, as the API shows it. ``scanning_here``: this process runs a scan now."""
    host, pid = me()
    row = db.session.get(ScanState, host, populate_existing=True)
    db.session.commit()  # end the read transaction
    if row is None:
        return dict(IDLE)
    status = {"state": row.state, "done": row.done, "total": row.total, "started_at": row.started_at}
    if row.state == "running" and _owner_gone(row, pid, scanning_here):
        status.update(state="failed", error=INTERRUPTED)
    if row.finished_at is not None:
        status["finished_at"] = row.finished_at
    if row.summary is not None:
        status["summary"] = row.summary
    if row.error is not None:
        status["error"] = row.error
    return status


def claim() -> bool:
    """Mark a scan running on this host for this process; False if another live process scans."""
    host, pid = me()
    return host_state.claim(ScanState, host, lambda row: _owner_gone(row, pid, scanning_here=False),
                            done=0, total=0, summary=None)


def report(done: int, total: int) -> None:
    _mine(done=done, total=total)


def finish(**result) -> None:
    """``state`` ("finished" or "failed") with ``summary`` or ``error``."""
    _mine(finished_at=time.time(), **result)


def _mine(**values) -> None:
    host, pid = me()
    db.session.execute(update(ScanState).where(ScanState.host == host, ScanState.owner_pid == pid,
                                               ScanState.state == "running").values(**values))
    db.session.commit()


def _owner_gone(row: ScanState, pid: int, scanning_here: bool) -> bool:
    if row.owner_pid == pid:
        return not scanning_here
    return row.owner_pid is None or not process_exists(row.owner_pid)
