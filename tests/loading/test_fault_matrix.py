"""The load fault matrix (issue 7), against real ``modelhub serve`` processes: however a load goes wrong, it
ends in a final status with a readable cause within its timeout + 5 s, the server keeps answering, no
attempt is left ``running`` and no worker process outlives it; after an unload the server's memory is
back near its baseline. The cases are in tests/loading/fault_cases.py (bench/faults.py prints the same
matrix as a table)."""

import os
import shutil
import time

import pytest

from tests.loading import fault_cases as fc
from tests.support import LiveServer

pytestmark = pytest.mark.slow  # real servers on a SQLite file in their data directory
MB = 1024 * 1024


def server_env(plugins_site) -> dict:
    """Only what a server needs: module-scoped servers start before the per-test environment is isolated."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    path = os.pathsep.join(filter(None, [str(plugins_site), os.environ.get("PYTHONPATH")]))
    return {**keep, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory, test_plugins_site):
    """One server with the test plugins for every case of the matrix (each loads a model of its own)."""
    server = LiveServer(tmp_path_factory.mktemp("matrix") / "home", env=server_env(test_plugins_site),
                        inherit_env=False)
    server.start(timeout=60)
    yield server
    server.stop()


def assert_ended_well(outcome: fc.Outcome, timeout: float, error_type: str, cause: tuple[str, ...]) -> None:
    attempt = outcome.attempt
    assert attempt is not None and outcome.seconds is not None, f"no final status within {timeout + fc.GRACE + 30} s"
    assert outcome.seconds <= timeout + fc.GRACE, f"final after {outcome.seconds:.1f} s, limit {timeout} + {fc.GRACE} s"
    assert outcome.status != "testing"
    assert attempt["error_type"] == error_type, attempt
    shown = attempt["explanation"] or attempt["error_message"]  # the cause the details modal shows
    for words in cause:
        assert words in shown, shown
    assert attempt["error_message"] and "Traceback" not in shown
    assert outcome.answered, f"GET /api/models failed: {outcome.failed_gets}"
    assert [a["outcome"] for a in outcome.attempts if a["outcome"] == "running"] == []
    assert outcome.worker_gone, f"worker {outcome.worker_pid} still alive"


@pytest.mark.parametrize("case", fc.CASES, ids=[case.id for case in fc.CASES])
def test_a_failed_load_ends_incompatible_with_a_readable_cause(matrix_server, tiny_models, tmp_path, case):
    client = fc.Client(matrix_server.url)
    outcome = fc.run_case(client, case, tiny_models["llama"], tmp_path, compatibility_notes="keep me")
    assert_ended_well(outcome, case.timeout, case.error_type, case.cause)
    assert outcome.status == "incompatible"
    assert outcome.attempt["outcome"] == "failure"
    if case.suggestion is not None:  # the one-click fix the details modal offers
        assert outcome.attempt["suggestion"] == case.suggestion
    assert client.api("GET", f"/fault/{case.id}").json()["compatibility_notes"] == "keep me"


def test_pickle_only_weights_load_with_the_opt_in(matrix_server, tiny_models, tmp_path):
    """The pickle-only case is refused by the safety plugin, not broken: with the opt-in its files load."""
    client = fc.Client(matrix_server.url)
    directory = tmp_path / "pickled"
    shutil.copytree(tiny_models["llama"], directory)
    fc.pickle_only(directory)
    client.register("pickle/opt-in", directory, {"allow_pickle_weights": True})
    began = time.monotonic()
    client.api("POST", "/pickle/opt-in/load", json={"timeout": fc.LOAD_TIMEOUT}, expect=202)
    outcome = fc.wait_final(client, "pickle/opt-in", began, fc.LOAD_TIMEOUT)
    assert outcome.status == "compatible", outcome.attempt
    assert "use_safetensors" not in outcome.attempt["final_kwargs"]
    client.api("POST", "/pickle/opt-in/unload", expect=200)


def test_a_loaded_models_worker_killed_is_recorded_and_degrades_it(matrix_server, tiny_models):
    """Not a failed load: the model loaded, then its worker was killed (the OOM killer, a user's kill -9).
    The registry records it, with its cause, as a failure after the success: degraded."""
    outcome = fc.run_loaded_worker_killed(fc.Client(matrix_server.url), tiny_models["llama"])
    assert_ended_well(outcome, 0, "WorkerDiedWhileLoaded", ("killed by SIGKILL", "no longer loaded"))
    assert outcome.status == "degraded"
    assert [a["outcome"] for a in outcome.attempts] == ["failure", "success"]
    assert "last stage: loaded" in outcome.attempt["error_message"]


@pytest.mark.parametrize("whole_group", [True, False], ids=["process-group", "main-process"])
def test_server_killed_mid_load_and_restarted(tmp_path, tiny_models, test_plugins_site, whole_group):
    """SIGKILL to the whole server (gunicorn, its worker, the load worker: no handler runs), or to its
    main process only (``kill -9 PID``); the next server on the same database closes the attempt as
    interrupted and gives the model back the status it had."""
    outcome, facts = fc.run_server_killed(tmp_path / "home", tiny_models["llama"], server_env(test_plugins_site),
                                          whole_group=whole_group)
    assert_ended_well(outcome, fc.LOAD_TIMEOUT, "Interrupted", ("stopped",))
    assert outcome.attempt["outcome"] == "interrupted"
    assert outcome.status == "compatible"  # back to what it was before the attempt
    assert facts["leftovers"] == [], "processes of the killed server still running"
    # The lines users troubleshoot with (the custom load config, the final kwargs) were in the killed server's log.
    assert 'Using custom load config: {"fault_hang_seconds": 600}' in facts["log"]
    assert 'Final from_pretrained kwargs for fault/server-killed: {"use_safetensors": true}' in facts["log"]


def test_a_load_worker_ends_when_its_web_process_is_killed(tmp_path, tiny_models, test_plugins_site):
    """The gunicorn worker supervising a load is SIGKILLed (the main process starts another): the load
    worker, orphaned, must not hang on holding memory for no one, and the attempt ends as interrupted
    within the load's timeout + 5 s (the new web process takes the dead one's lease over)."""
    server = LiveServer(tmp_path / "home", env=server_env(test_plugins_site), inherit_env=False)
    server.start(timeout=60)
    try:
        outcome, worker_ended = fc.run_web_process_killed(fc.Client(server.url), tiny_models["llama"], timeout=10)
    finally:
        server.stop()
    assert worker_ended is not None and worker_ended < 5, "the orphaned load worker is still running"
    assert outcome.answered, f"GET /api/models failed: {outcome.failed_gets}"
    # The new web process's reaper takes the dead one's lease over: the attempt ends, the status comes back.
    assert_ended_well(outcome, 10, "Interrupted", ("stopped",))
    assert outcome.status == "unknown"


def test_after_unload_the_server_memory_is_back_to_its_baseline(tmp_path, tiny_models):
    server = LiveServer(tmp_path / "home", env={"HF_HUB_OFFLINE": "1"})
    server.start(timeout=60)
    try:
        memory = fc.memory_after_unload(server, tiny_models["llama"])
    finally:
        server.stop()
    assert memory["worker_gone"], f"the load worker {memory['worker_pid']} outlived the unload"
    assert memory["workers_left"] == []
    assert memory["loaded_worker"] > 50 * MB  # the model (torch and all) lived in the worker, now gone
    growth = memory["after"] - memory["baseline"]
    assert growth <= 100 * MB, f"server RSS grew by {growth / MB:.0f} MB: {memory}"
    assert memory["status"] == "compatible"
