"""The details modal's "Find a working config" section (``autoconfigure/_autoconfigure.html``): start a
search, its progress (the section polls itself every second while the run runs, and stops once it
ended), Stop, and Apply, which re-renders the whole form as the history's Restore does (the editor, the
ETag and the history then show the new version).

The section fetches itself when the form is shown (as the Retest banner does): the form's view
(``views.models.details``) stays unaware of it, and Apply can reuse that view without an import cycle.
A refused start, stop or apply (a search already runs, the ML stack is missing, the model is busy) is
left to ``modelhub/errors.py``: its one HTMX error fragment lands in the section's message slot
(``static/js/modelhub.js``), with the refusal's own status.
"""

from flask import Blueprint, current_app, make_response, render_template, request

from modelhub import registry
from modelhub.autoconfigure import rules, runs
from modelhub.autoconfigure.schemas import AutoconfigureRunSchema
from modelhub.views.models import details

bp = Blueprint("autoconfigure", __name__)
_run_schema = AutoconfigureRunSchema()


def runner():
    return current_app.extensions["modelhub.autoconfigure"]


@bp.get("/models/<path:model_name>/autoconfigure")
def autoconfigure_section(model_name):
    """The section as it is now: the newest run's progress or result. Polled with ``was=running`` while a
    run runs; the poll that sees it ended also has the model list reload (the tries changed its status)."""
    return _section(model_name, was_running=request.args.get("was") == "running")


@bp.post("/models/<path:model_name>/autoconfigure")
def start_autoconfigure(model_name):
    """The "Find a working config" button: start a search from the saved load_config; the section comes
    back with its progress and polls itself until the search ends."""
    runner().start(model_name)
    return _section(model_name)


@bp.post("/models/<path:model_name>/autoconfigure/stop")
def stop_autoconfigure(model_name):
    """Stop the running search; the try loading now is cut short."""
    registry.get_model(model_name)  # an unknown model is a 404, not "no search is running"
    runner().stop(model_name)
    return _section(model_name)


@bp.post("/autoconfigure-runs/<int(max=2147483647):run_id>/apply")
def apply_autoconfigure(run_id):
    """Make the run's result the model's load_config (a new version), then re-render the whole details
    form: the editor shows the config, the history the version (and how to restore the one before)."""
    run = _run_schema.dump(runner().apply(run_id, via="page"))
    version = run["applied_version"]
    undo = f" Restore version {version - 1} to undo it." if version and version > 1 else ""
    response = details(run["model_name"], history_note=f"Applied the config auto-configure found (run {run['id']}) "
                                                       f"as version {version}: it is the load config in force now.{undo}")
    response.headers["HX-Trigger"] = "modelsChanged"  # the card shows the status the config earned
    return response


def _section(model_name: str, was_running: bool = False):
    model = registry.get_model(model_name)
    latest = runs.latest(model.id)
    run = _run_schema.dump(latest) if latest is not None else None
    response = make_response(render_template("autoconfigure/_autoconfigure.html", model=model,
                                             autoconfigure={"run": run, **_progress(run)}))
    if was_running and (run is None or run["state"] != "running"):
        response.headers["HX-Trigger"] = "modelsChanged"  # it just ended: the cards show the statuses it left
    return response


def _progress(run: dict | None) -> dict:
    """What the section shows beyond the run itself: the tries numbered as loads (skipped configs are not
    loads), the kind of each failure in words, and why each key of the proposed diff changed."""
    if run is None:
        return {"tries": [], "loads": 0, "why_of_key": {}}
    tries, number = [], 0
    for entry in run["tries"]:
        loaded = entry["outcome"] != "skipped"
        number += loaded
        outcome = entry["outcome"]
        if outcome == "interrupted" or (outcome == "running" and run["state"] != "running"):
            outcome = "cut short"  # the run was stopped or interrupted while this try loaded
        tries.append({**entry, "outcome": outcome, "number": number if loaded else None,
                      "kind_label": rules.LABELS.get(entry.get("kind"))})
    return {"tries": tries, "loads": number, "why_of_key": _why_of_key(run["tries"])}


def _why_of_key(tries: list[dict]) -> dict[str, str]:
    """For each top-level load_config key, the why of the newest try (up to the one that loaded) that
    changed it: the reason shown beside that key in the proposed diff."""
    found = {}
    for entry in tries:
        if entry["outcome"] == "skipped":
            continue
        for key in entry.get("changes") or {}:
            found[key] = entry.get("why")
        if entry["outcome"] == "success":
            break
    return found
