"""The Models page's Rescan button: starts a scan and shows its progress, then its summary and the
libraries it looked in (what each root holds)."""

from flask import Blueprint, current_app, make_response, render_template

from modelhub.discovery import locations_summary
from modelhub.exceptions import ScanInProgress

bp = Blueprint("discovery", __name__)


@bp.post("/scan")
def start_scan():
    """Start a scan; answered with its status, which polls itself until the scan ends."""
    try:
        current_app.extensions["modelhub.scanner"].start()
    except ScanInProgress as busy:
        return _status_fragment(str(busy))
    return _status_fragment()


@bp.get("/scan/status")
def scan_status():
    """The scan's status as it is now (``_scan_status.html``)."""
    return _status_fragment()


@bp.get("/scan/roots")
def library_roots():
    """Each place a scan looks in with what the registry holds there (``_library_roots.html``), loaded after
    the Models page's first render."""
    status = locations_summary.with_roots(current_app.extensions["modelhub.scanner"].status)
    return render_template("discovery/_library_roots.html", roots=status.get("roots") or [])


def _status_fragment(message: str | None = None):
    status = locations_summary.with_roots(current_app.extensions["modelhub.scanner"].status)
    response = make_response(render_template("discovery/_scan_status.html", scan=status, message=message))
    if status["state"] in ("finished", "failed"):
        # The scan is over: the model list reloads itself (see models/_model_results.html).
        response.headers["HX-Trigger"] = "modelsChanged"
    return response
