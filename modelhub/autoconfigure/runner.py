"""Running an auto-configure search: one real try after another until a config loads.

- The search starts from the model's saved load_config. Each try is a normal load attempt of the
  candidate config (``supervisor.load(..., trial=...)``) in its own worker process, so a crash, an OOM
  kill or a hang ends that try only: it is recorded, classified (modelhub/autoconfigure/failures.py) and
  the search (modelhub/autoconfigure/search.py) picks the next candidate from its cause. Preflight
  prunes candidates that cannot fit here before they are tried.
- Bounded by ``max_tries`` and ``max_seconds``; stoppable (the try loading now is cut short, as the
  card's Cancel does). A server restart closes the run as interrupted (runs.close_interrupted).
- The first config that loads is the result: the model is unloaded again (it was loaded with a config
  that is not its own yet) and, with ``apply``, the result becomes its load_config at once (a version
  "auto-configure" in its history, which can be rolled back). Its status in this environment is
  ``compatible``, or ``degraded`` with the limitation (offload, 4-bit, float32). Nothing loads: the last
  try records ``incompatible`` here, and the run keeps the chain of causes.
"""

import json
import logging
import threading
import time

from flask import Flask

from modelhub import config_diff, config_history, registry
from modelhub.autoconfigure import failures, runs
from modelhub.autoconfigure.model_facts import environment_facts, model_info
from modelhub.exceptions import AutoconfigureConflict, ModelhubError
from modelhub.extensions import db
from modelhub.loading import attempts, ml_stack
from modelhub.loading.retest import wait_for_end
from modelhub.loading.types import Trial

log = logging.getLogger(__name__)
DEFAULT_MAX_TRIES = 8
DEFAULT_MAX_SECONDS = 1800.0
WAIT_GRACE = 60.0  # past a try's timeout, a try that has not ended means its watcher is gone


class AutoconfigureRunner:
    """Starts auto-configure runs in this process and applies their results (see the module's docstring)."""

    def __init__(self, app: Flask):
        self.app = app
        self._threads: dict[int, threading.Thread] = {}  # the searches this process runs, by run id

    def start(self, model_name: str, *, max_tries: int = DEFAULT_MAX_TRIES, max_seconds: float = DEFAULT_MAX_SECONDS,
              apply: bool = False, background: bool = True):
        ml_stack.require()  # refused up front (409), as a load is
        supervisor = self.app.extensions["modelhub.supervisor"]
        runs.refuse_if_running(registry.get_model(model_name))
        if supervisor.state(model_name)["state"] == "loading":
            raise AutoconfigureConflict(f"{model_name!r} is loading or being measured now; try again when it ends.")
        run = runs.begin(self.app, model_name, max_tries=max_tries, max_seconds=max_seconds, apply=apply)
        if background:
            thread = threading.Thread(target=self._run_in_context, args=(run.id, model_name), daemon=True,
                                      name=f"autoconfigure:{model_name}")
            self._threads[run.id] = thread
            thread.start()
        else:
            self._search(run.id, model_name)
        return runs.get(run.id)

    def stop(self, model_name: str):
        """Ask the model's running search to stop; the try loading now is cut short."""
        run = runs.request_stop(model_name)
        supervisor = self.app.extensions["modelhub.supervisor"]
        try:
            if supervisor.state(model_name)["state"] == "loading":
                supervisor.unload(model_name)
        except ModelhubError:  # the try ended meanwhile
            db.session.rollback()
        return run

    def shutdown(self, wait: float = 30.0) -> None:
        """Stop every search this process runs (each ends stopped once its try is cut short) and wait."""
        with self.app.app_context():
            for run_id in list(self._threads):
                runs.ask_to_stop(run_id)
            db.session.remove()
        self.app.extensions["modelhub.supervisor"].shutdown()
        for thread in list(self._threads.values()):
            thread.join(wait)

    def apply(self, run_id: int, via: str = "api"):
        """Make the run's result the model's load_config (a new version, source "auto-configure")."""
        run = runs.get(run_id)
        if run.state != "succeeded" or run.result_config is None:
            raise AutoconfigureConflict(f"Auto-configure run {run_id} found no config that loads; nothing to apply.")
        if run.applied_version_id is not None:
            raise AutoconfigureConflict(f"Auto-configure run {run_id}'s config was applied already.")
        version_id = _write_result(runs.model_name_of(run), run.result_config, run.result_status, via)
        runs.record_applied(run.id, version_id)
        return runs.get(run.id)

    # ---- the search itself ----------------------------------------------------------------------

    def _run_in_context(self, run_id: int, model_name: str) -> None:
        with self.app.app_context():
            try:
                self._search(run_id, model_name)
            finally:
                db.session.remove()
                self._threads.pop(run_id, None)

    def _search(self, run_id: int, model_name: str) -> None:
        try:
            self._tries(run_id, model_name)
        except Exception as error:  # noqa: BLE001 - the run shows it; the server goes on
            log.exception("auto-configure of %s failed", model_name)
            db.session.rollback()
            runs.finish(run_id, "failed", result_reason=f"The search itself failed: {type(error).__name__}: {error}")

    def _tries(self, run_id: int, model_name: str) -> None:
        from modelhub.autoconfigure.search import Search  # the rules and the plugins' proposals

        run = runs.get(run_id)
        model = registry.get_model(model_name)
        start = runs.config_of(run.start_config)
        search = Search(model_info(model), start, environment_facts(self.app), self.app.extensions["modelhub.plugins"],
                        prune=lambda config: _prune(self.app, model_name, config), max_tries=run.max_tries)
        deadline = time.monotonic() + run.max_seconds
        candidate, last_attempt, shown_skips = search.first(), None, 0
        db.session.commit()
        while candidate is not None:
            shown_skips = _record_skips(run_id, search, shown_skips)
            if runs.stop_requested(run_id):
                runs.finish(run_id, "stopped", result_reason="Stopped by the user.")
                return
            if time.monotonic() >= deadline:
                break
            attempt = self._try(run_id, model_name, candidate, deadline)
            if attempt is None:
                return  # the run was closed by _try
            last_attempt = attempt
            if attempt.outcome == "success":
                self._succeeded(run_id, model_name, candidate, attempt)
                return
            if attempt.outcome == "interrupted":
                runs.update_try(run_id, outcome="interrupted", cause=attempt.error_message)
                state = "stopped" if runs.stop_requested(run_id) else "interrupted"
                runs.finish(run_id, state, result_reason=f"The try was cut short: {attempt.error_message}")
                return
            failure = failures.of_attempt(attempt)
            runs.update_try(run_id, outcome="failure", kind=failure.kind, cause=failure.cause)
            candidate = search.after_failure(failure)
        _record_skips(run_id, search, shown_skips)
        ended = search.ended_because if candidate is None else (
            f"The time budget ({run.max_seconds:g} s) was spent before a config loaded.")
        self._nothing_loaded(run_id, last_attempt, ended, search)

    def _try(self, run_id: int, model_name: str, candidate, deadline: float):
        """Load the candidate and wait for the try to end; returns its attempt (None: the run ended)."""
        supervisor = self.app.extensions["modelhub.supervisor"]
        runs.add_try(run_id, {"config": candidate.config, "why": candidate.why, "changes": candidate.changes,
                              "limitation": candidate.limitation, "attempt_id": None, "outcome": "running",
                              "kind": None, "cause": None})
        timeout = max(1.0, min(supervisor.default_timeout, deadline - time.monotonic()))
        try:
            opened = supervisor.load(model_name, force=True, timeout=timeout,
                                     trial=Trial(candidate.config, run_id, given_up(candidate)))
        except ModelhubError as refused:  # loading elsewhere meanwhile, deleted, ML stack gone
            db.session.rollback()
            runs.update_try(run_id, outcome="not started", cause=str(refused))
            runs.finish(run_id, "failed", result_reason=f"A try could not start: {refused}")
            return None
        runs.update_try(run_id, attempt_id=opened.id)
        return wait_for_end(opened.id, timeout + WAIT_GRACE)

    def _succeeded(self, run_id: int, model_name: str, candidate, attempt) -> None:
        runs.update_try(run_id, outcome="success", status=attempt.environment_status)
        reason = attempts.degraded_reason(attempt) or given_up(candidate)
        result = {"result_config": json.dumps(candidate.config), "result_status": attempt.environment_status,
                  "result_reason": reason}
        run = runs.get(run_id)
        if run.apply and run.state == "running" and not run.stop_requested:
            # Applied before the run is closed, and closed with the version: a reader never sees a
            # succeeded run of apply=True without the version it made (a race the suite met on PostgreSQL).
            result["applied_version_id"] = _write_result(model_name, result["result_config"], result["result_status"],
                                                         "server")
        runs.finish(run_id, "succeeded", **result)
        # Loaded with a config that is not the model's own (or was not until now): leave the host as it
        # was. After the run is closed: the worker's exit (torch tearing down) takes seconds, the answer not.
        try:
            self.app.extensions["modelhub.supervisor"].unload(model_name)
        except ModelhubError:
            db.session.rollback()

    def _nothing_loaded(self, run_id: int, last_attempt, ended: str, search) -> None:
        """No config loaded: the last try's failure becomes the model's verdict here (incompatible)."""
        if last_attempt is not None:
            attempts.record_search_verdict(last_attempt.id)
        tried = [entry for entry in runs.get(run_id).tries or [] if entry.get("outcome") != "skipped"]
        chain = "; ".join(f"try {number}: {entry.get('cause') or entry.get('outcome')}"
                          for number, entry in enumerate(tried, start=1))
        runs.finish(run_id, "failed", result_status="incompatible" if last_attempt is not None else None,
                    result_reason=f"{ended} {chain}".strip())


def _write_result(model_name: str, config_text: str, status: str | None, via: str) -> int:
    """Make a run's result the model's load_config (a new version, source "auto-configure"); its version id."""
    with config_history.made_by("auto-configure", via=via):
        model = registry.update_model(model_name, {"load_config": config_text, "compatibility_status": status})
    return runs.newest_version_id(model.id)


def given_up(candidate) -> str | None:
    """What a candidate's config gives up whatever the load does (4-bit weights, float32). Offloading is
    not counted here: budgets that turn out large enough offload nothing, so it is judged by where the parts
    really went (the load report's ``degraded_reason``)."""
    texts = [text for plugin, (text, _keys) in candidate.limitations.items() if plugin != "device_map"]
    return "; ".join(dict.fromkeys(texts)) or None


def _record_skips(run_id: int, search, shown: int) -> int:
    """Candidates the search skipped since last time (preflight said they cannot fit), into the chain."""
    for config, reason in search.skipped[shown:]:
        runs.add_try(run_id, {"config": config, "why": None, "changes": None, "limitation": None, "attempt_id": None,
                              "outcome": "skipped", "kind": None, "cause": reason})
    return len(search.skipped)


def _prune(app, model_name: str, config: dict) -> str | None:
    """Preflight's reason not to try ``config`` here (it cannot fit or cannot load), if any."""
    try:
        from modelhub import preflight

        verdict = preflight.check(app, registry.get_model(model_name), config)
    except Exception:  # noqa: BLE001 - without a preflight the candidate is simply tried
        log.warning("preflight could not judge a candidate of %s", model_name, exc_info=True)
        db.session.rollback()
        return None
    if verdict.get("verdict") in ("wont_fit", "cannot_load"):
        return f"preflight: {verdict.get('reason')}"
    return None


def diff_against(current_text: str | None, result_text: str | None):
    """What applying a run's result would change in the model's load_config now (a ConfigDiff)."""
    return config_diff.diff(current_text, result_text)
