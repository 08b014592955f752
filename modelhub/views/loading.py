"""The Models page's Load / Unload buttons: HTMX posts answered with the re-rendered card, which polls
itself while a load runs; and the page's Retest banner (models needing a retest on this host)."""

import time

from flask import Blueprint, current_app, make_response, render_template, request

from modelhub.exceptions import LoadConflict, NotLoaded, RetestConflict
from modelhub.views.models import card

bp = Blueprint("loading", __name__)


@bp.post("/models/<path:model_name>/load")
def load(model_name):
    """Start loading; the card comes back in its loading state and polls itself until the load ends."""
    try:
        current_app.extensions["modelhub.supervisor"].load(model_name)
    except LoadConflict as refusal:
        return card(model_name, str(refusal))
    return card(model_name)


@bp.post("/models/<path:model_name>/unload")
def unload(model_name):
    """Unload (or cancel a load in progress)."""
    try:
        current_app.extensions["modelhub.supervisor"].unload(model_name)
    except NotLoaded as refusal:
        return card(model_name, str(refusal))
    return card(model_name)


# ---- this host's Retest (the Models page's banner, templates/loading/_retest.html) -------------------

@bp.get("/retest/status")
def retest_status():
    """The banner as it is now: how many models need a retest here, or the running retest's progress."""
    return _retest_banner()


@bp.post("/retest")
def start_retest():
    """Start the retest; the banner comes back with its progress and polls itself until the end."""
    try:
        current_app.extensions["modelhub.retest"].start()
    except RetestConflict as busy:
        return _retest_banner(str(busy))
    return _retest_banner()


@bp.post("/retest/stop")
def stop_retest():
    """Stop after the model loading now."""
    try:
        current_app.extensions["modelhub.retest"].stop()
    except RetestConflict as idle:
        return _retest_banner(str(idle))
    return _retest_banner()


RECENT = 3600  # seconds a finished retest's results stay on the banner


def _retest_banner(message: str | None = None):
    retest = current_app.extensions["modelhub.retest"].status()
    recent = retest.get("finished_at") is not None and time.time() - retest["finished_at"] < RECENT
    response = make_response(render_template("loading/_retest.html", retest=retest, recent=recent, message=message,
                                             max_loaded=current_app.config["MODELHUB_MAX_LOADED"]))
    if request.args.get("was") == "running" and retest["state"] != "running":
        # The retest just ended: the model list reloads itself (see models/_model_results.html).
        response.headers["HX-Trigger"] = "modelsChanged"
    return response
