"""The modal's "Find a working config" section through the test client, on the real database: runs and their
load attempts written as the runner writes them (running, succeeded, failed), and what the section shows
of each; its refusals (409) in the app's one HTMX error shape. The real search runs in
tests/autoconfigure/ and in the browser (tests/browser/test_autoconfigure.py)."""

import html
import json
import os
import re

import pytest

from modelhub import environments
from modelhub.extensions import db
from modelhub.models import AutoconfigureRun, LoadAttempt, ModelRegistry, WorkerLease, utcnow

HX = {"HX-Request": "true"}
NAME = "microsoft/phi-2"
SDPA_ERROR = "RuntimeError: HIP error: invalid device function"
START = {"torch_dtype": "float16"}
EAGER = {"torch_dtype": "float16", "attn_implementation": "eager"}
EAGER_WHY = "An attention or kernel error: eager attention has a kernel on every device."


@pytest.fixture
def phi2(client):
    answer = client.post("/api/models", json={"model_name": NAME, "load_config": json.dumps(START)})
    assert answer.status_code == 201, answer.json


def add_run(app, state="running", tries=(), attempts=(), **columns) -> int:
    """A run as the runner records it, each try's load attempt with it; a running run is owned by a live
    process other than this one (the test's parent), as one running in another server process is."""
    with app.app_context():
        model = db.session.query(ModelRegistry).filter_by(model_name=NAME).one()
        run = AutoconfigureRun(model_id=model.id, host=environments.host_name(app.config), state=state,
                               start_config=model.load_config, tries=[], max_tries=8, max_seconds=1800,
                               owner_pid=os.getppid(), finished_at=None if state == "running" else utcnow(), **columns)
        db.session.add(run)
        db.session.flush()
        chain = []
        for entry, attempt in zip(tries, attempts):
            row = LoadAttempt(model_id=model.id, previous_status="unknown", autoconfigure_run_id=run.id, **attempt)
            db.session.add(row)
            db.session.flush()
            chain.append({"attempt_id": row.id, "changes": None, "limitation": None, "kind": None, "cause": None,
                          "status": None, **entry})
        run.tries = chain
        db.session.commit()
        return run.id


def failed_attention_try() -> tuple[dict, dict]:
    return ({"config": START, "why": "The current load config.", "outcome": "failure", "kind": "attention",
             "cause": SDPA_ERROR},
            {"outcome": "failure", "error_type": "RuntimeError", "error_message": SDPA_ERROR, "failure_kind": "attention",
             "finished_at": utcnow()})


def eager_try(outcome="success", status="compatible") -> tuple[dict, dict]:
    return ({"config": EAGER, "why": EAGER_WHY, "changes": {"attn_implementation": "eager"}, "outcome": outcome,
             "status": status if outcome == "success" else None},
            {"outcome": outcome, "environment_status": status if outcome == "success" else None,
             "finished_at": utcnow() if outcome != "running" else None})


def section(client, **query):
    answer = client.get(f"/models/{NAME}/autoconfigure", query_string=query, headers=HX)
    assert answer.status_code == 200, answer.text
    return answer


def text_of(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", markup))).strip()


def test_the_modal_includes_the_section_which_fetches_itself(client, phi2):
    form = client.get(f"/models/{NAME}/details", headers=HX).text
    assert 'id="autoconfigure"' in form
    assert f'hx-get="/models/{NAME}/autoconfigure"' in form and 'hx-trigger="load"' in form


def test_without_a_run_the_section_offers_the_button_and_does_not_poll(client, phi2):
    markup = section(client).text
    assert "Find a working config</button>" in markup
    assert f'hx-post="/models/{NAME}/autoconfigure"' in markup
    assert "hx-trigger" not in markup


def test_a_running_search_shows_try_k_of_n_each_try_and_stop_and_polls_every_second(app, client, phi2):
    first, first_attempt = failed_attention_try()
    second, second_attempt = eager_try(outcome="running")
    add_run(app, tries=[first, second], attempts=[first_attempt, second_attempt])

    markup = section(client).text
    shown = text_of(markup)

    assert 'data-state="running"' in markup
    assert f'hx-get="/models/{NAME}/autoconfigure?was=running"' in markup and 'hx-trigger="load delay:1s"' in markup
    assert "Try 2 of 8" in shown
    assert f"Try 1 failed attention or kernel error {json.dumps(START)} Why: The current load config. {SDPA_ERROR}" in shown
    assert f"Try 2 loading… {json.dumps(EAGER, sort_keys=True)} Why: {EAGER_WHY}" in shown
    assert "Stop</button>" in markup and "Find a working config</button>" not in markup


def test_a_finished_search_proposes_its_config_with_the_diff_the_why_and_apply(app, client, phi2):
    run_id = add_run(app, state="succeeded", tries=[failed_attention_try()[0], eager_try()[0]],
                     attempts=[failed_attention_try()[1], eager_try()[1]], result_config=json.dumps(EAGER),
                     result_status="compatible")

    markup = section(client, was="running").text
    shown = text_of(markup)

    assert "hx-trigger" not in markup  # ended: no more polling
    assert "Found a config that loads (try 2 of 8): compatible" in shown
    assert f'+ attn_implementation: "eager" — {EAGER_WHY}' in shown
    assert f'hx-post="/autoconfigure-runs/{run_id}/apply"' in markup and ">Apply</button>" in markup
    assert "Find a working config</button>" in markup  # another search can start


def test_the_poll_that_sees_the_end_reloads_the_model_list(app, client, phi2):
    add_run(app, state="succeeded", tries=[eager_try()[0]], attempts=[eager_try()[1]],
            result_config=json.dumps(EAGER), result_status="compatible")
    assert section(client, was="running").headers["HX-Trigger"] == "modelsChanged"
    assert "HX-Trigger" not in section(client).headers


def test_a_degraded_result_says_what_it_gives_up(app, client, phi2):
    offload = {**START, "device_map": "auto", "max_memory": {"cpu": "2GiB"}}
    add_run(app, state="succeeded", tries=[{"config": offload, "why": "Out of memory: offload to the CPU.",
                                            "changes": {"device_map": "auto", "max_memory": {"cpu": "2GiB"}},
                                            "outcome": "success", "status": "degraded"}],
            attempts=[{"outcome": "success", "environment_status": "degraded"}],
            result_config=json.dumps(offload), result_status="degraded", result_reason="part of it runs on the CPU")

    shown = text_of(section(client).text)

    assert "degraded it loads, but part of it runs on the CPU" in shown
    assert '+ max_memory: {"cpu": "2GiB"} — Out of memory: offload to the CPU.' in shown


def test_a_failed_search_shows_the_chain_of_causes_and_why_it_ended(app, client, phi2):
    reason = "Eager attention did not help either. try 1: " + SDPA_ERROR + "; try 2: the worker crashed"
    second = {"config": EAGER, "why": EAGER_WHY, "changes": {"attn_implementation": "eager"}, "outcome": "failure",
              "kind": "crash", "cause": "The worker process died (exit code 3)."}
    add_run(app, state="failed", tries=[failed_attention_try()[0], second],
            attempts=[failed_attention_try()[1], {"outcome": "failure", "error_type": "WorkerDied"}],
            result_status="incompatible", result_reason=reason)

    markup = section(client).text
    shown = text_of(markup)

    assert "No config loaded: the model is incompatible here." in shown
    assert reason in shown
    assert "Try 1 failed attention or kernel error" in shown
    assert "Try 2 failed the worker crashed" in shown and "The worker process died (exit code 3)." in shown
    assert "Apply</button>" not in markup


def test_an_applied_result_says_which_version_it_became(app, client, phi2):
    run_id = add_run(app, state="succeeded", tries=[eager_try()[0]], attempts=[eager_try()[1]],
                     result_config=json.dumps(EAGER), result_status="compatible")

    form = client.post(f"/autoconfigure-runs/{run_id}/apply", headers=HX)

    assert form.status_code == 200, form.text
    assert form.headers["HX-Trigger"] == "modelsChanged"
    assert 'id="model-form"' in form.text  # the whole form, as the history's Restore answers
    editor = re.search(r'<textarea id="field-load_config".*?>(.*?)</textarea>', form.text, re.S).group(1)
    assert json.loads(html.unescape(editor)) == EAGER
    assert "Applied the config auto-configure found" in text_of(form.text) and "as version 2" in text_of(form.text)
    assert "Applied as version 2" in text_of(section(client).text)
    assert ">Apply</button>" not in section(client).text


def test_a_second_start_while_a_search_runs_is_a_409_in_the_error_shape(app, client, phi2):
    run_id = add_run(app, tries=[failed_attention_try()[0]], attempts=[failed_attention_try()[1]])

    answer = client.post(f"/models/{NAME}/autoconfigure", headers=HX)

    assert answer.status_code == 409
    assert answer.text.startswith('<p class="load-error refused-message" role="alert">')
    assert f"already running (run {run_id})" in html.unescape(answer.text)


def test_a_start_without_the_ml_stack_says_what_to_install(client, phi2, monkeypatch):
    monkeypatch.setattr("modelhub.loading.ml_stack.missing", lambda: ["torch"])
    answer = client.post(f"/models/{NAME}/autoconfigure", headers=HX)
    assert answer.status_code == 409
    assert "refused-message" in answer.text and "torch is not installed" in answer.text


def test_a_start_while_the_model_loads_is_refused(app, client, phi2):
    with app.app_context():
        model = db.session.query(ModelRegistry).filter_by(model_name=NAME).one()
        db.session.add(WorkerLease(model_id=model.id, job="load", state="loading", host=environments.host_name(
            app.config), owner_pid=os.getppid()))
        db.session.commit()
    answer = client.post(f"/models/{NAME}/autoconfigure", headers=HX)
    assert answer.status_code == 409
    assert "is loading or being measured now" in html.unescape(answer.text)


def test_stop_without_a_running_search_and_a_second_apply_are_409s(app, client, phi2):
    stop = client.post(f"/models/{NAME}/autoconfigure/stop", headers=HX)
    assert stop.status_code == 409 and "No auto-configure run is running" in stop.text

    run_id = add_run(app, state="succeeded", tries=[eager_try()[0]], attempts=[eager_try()[1]],
                     result_config=json.dumps(EAGER), result_status="compatible")
    assert client.post(f"/autoconfigure-runs/{run_id}/apply", headers=HX).status_code == 200
    again = client.post(f"/autoconfigure-runs/{run_id}/apply", headers=HX)
    assert again.status_code == 409 and "applied already" in again.text and "refused-message" in again.text


def test_stop_marks_the_running_search_as_stopping(app, client, phi2):
    add_run(app, tries=[failed_attention_try()[0]], attempts=[failed_attention_try()[1]])
    markup = client.post(f"/models/{NAME}/autoconfigure/stop", headers=HX).text
    assert "Stopping…" in markup and "Stop</button>" not in markup


def test_an_unknown_model_is_a_404(client):
    assert client.get("/models/no/such/autoconfigure", headers=HX).status_code == 404
    assert client.post("/models/no/such/autoconfigure/stop", headers=HX).status_code == 404


def test_a_stopped_search_says_so_and_its_last_try_was_cut_short(app, client, phi2):
    add_run(app, state="stopped", tries=[eager_try(outcome="running")[0]], attempts=[eager_try(outcome="running")[1]],
            result_reason="The try was cut short: Loading was cancelled by the user.")
    markup = section(client).text
    shown = text_of(markup)
    assert "Stopped after 1 try, before a config loaded. The try was cut short" in shown
    assert "Try 1 cut short" in shown and "loading…" not in shown
    assert "hx-trigger" not in markup and "Find a working config</button>" in markup
