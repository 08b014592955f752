"""Running scans: one at a time per host (whichever web process is asked), in the background for the
page and the API (with progress), or in the foreground for the CLI. Both record the findings through
the same sync."""

import logging
import threading
import time

from flask import Flask

from modelhub import config_history, registry
from modelhub.card_scores import import_card_scores
from modelhub.discovery import libraries, progress, scanner
from modelhub.discovery.sync import SyncSummary, apply_scan, known_files
from modelhub.discovery.types import Problem
from modelhub.exceptions import ScanInProgress
from modelhub.extensions import db

log = logging.getLogger(__name__)


def scan_and_record(on_progress=None) -> SyncSummary:
    """Scan the hub cache, the secondary roots and the tools' libraries (and check custom copies); record
    what was found. GGUF files unchanged since the registry read them are not opened again. Needs an app
    context."""
    report = scanner.scan(libraries.scan_locations(), on_progress=on_progress, known=known_files())
    with config_history.made_by("created", via="scan"):  # a model it registers: its history says so
        summary = apply_scan(report)
    _import_cards(summary)
    return summary


def _import_cards(summary: SyncSummary) -> None:
    """Models found for the first time get the published scores of their model card; a card that
    cannot be read is reported for that model and does not stop the scan."""
    for name in summary.added:
        try:
            result = import_card_scores(registry.get_model(name))
        except Exception as error:  # noqa: BLE001 - one model's card must not fail the whole scan
            db.session.rollback()
            summary.problems.append(Problem(name, f"model card not imported: {type(error).__name__}: {error}"))
            continue
        summary.problems += [Problem(name, f"model card: {problem}") for problem in result.problems]


class ScanRunner:
    """Starts background scans and answers for their progress. The state lives in the database (see
    progress.py): one scan per host at a time, whichever of its web processes is asked."""

    PROGRESS_EVERY = 0.25  # seconds between progress writes (a scan may visit thousands of folders)

    def __init__(self, app: Flask):
        self.app = app
        self.lock = threading.Lock()
        self.scanning = False  # this process runs a scan now
        self._last_report = 0.0

    @property
    def status(self) -> dict:
        """This host's scan: idle, running with progress, or the last one's summary (needs an app context)."""
        return progress.read(scanning_here=self.scanning)

    def start(self) -> dict:
        with self.lock:
            if self.scanning or not progress.claim():
                raise ScanInProgress("A scan is already running; its progress is at GET /api/scan.")
            self.scanning = True
        threading.Thread(target=self._run, daemon=True, name="modelhub-scan").start()
        return self.status

    def _progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_report >= self.PROGRESS_EVERY or done == total:
            self._last_report = now
            progress.report(done, total)

    def _run(self) -> None:
        with self.app.app_context():
            try:
                summary = scan_and_record(self._progress)
                result = {"state": "finished", "summary": summary_dict(summary)}
            except Exception as error:  # noqa: BLE001 - the page shows it; the server goes on
                log.exception("scan failed")
                db.session.rollback()
                result = {"state": "failed", "error": f"{type(error).__name__}: {error}"}
            try:
                progress.finish(**result)
            finally:
                self.scanning = False
                db.session.remove()


def summary_dict(summary: SyncSummary) -> dict:
    return {
        "added": summary.added,
        "copies_added": summary.copies_added,
        "went_missing": summary.went_missing,
        "came_back": summary.came_back,
        "problems": [{"path": p.path, "message": p.message} for p in summary.problems],
    }
