"""One state row per host for a background job that only one process of a host may run at a time (a
scan: ``ScanState``; a retest: ``RetestState``): every web process reads the same progress, and a second
start is refused while the row's owner lives."""

import os
import time

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from modelhub.extensions import db


def claim(table, host: str, owner_gone, **values) -> bool:
    """Mark the host's row of ``table`` running for this process, with ``values`` as its fresh progress;
    False when a live process runs the job already (``owner_gone(row)`` tells a dead owner's row, which
    may be claimed again). Its own transactions."""
    if db.session.get(table, host) is None:
        db.session.add(table(host=host, state="idle", done=0, total=0))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()  # another process created the row first
    row = db.session.get(table, host, populate_existing=True)
    if row.state == "running" and not owner_gone(row):
        db.session.commit()
        return False
    # Compare-and-set on what was read: of two processes claiming at once, one changes the row.
    claimed = db.session.execute(
        update(table)
        .where(table.host == host, table.state == row.state,
               or_(table.owner_pid == row.owner_pid, table.owner_pid.is_(None)))
        .values(state="running", started_at=time.time(), finished_at=None, error=None, owner_pid=os.getpid(),
                **values))
    db.session.commit()
    return claimed.rowcount == 1
