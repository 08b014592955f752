"""The asked host's side of a load requested from another host: its processes claim the queued job (one
claim wins), load the model with their own supervisor and environment, and record the attempt or why
not. In-process: two apps on one database, one per host name (as two hosts' modelhubs); then, on
PostgreSQL, real servers with their own data dirs and host names."""

import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from modelhub import environments
from modelhub.app import create_app
from modelhub.extensions import db
from modelhub.loading import host_jobs
from modelhub.models import HostJob, LoadAttempt
from tests.support import LiveServer

LAPTOP, DESKTOP = "cuda-laptop", "rocm-desktop"


def make_app(database_url, home, host, **config):
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_HOME": str(home),
                       "MODELHUB_HOST_NAME": host, "MODELHUB_LOAD_TIMEOUT": 120, **config})


@pytest.fixture
def hosts(database_url, tmp_path):
    """(laptop app, desktop app): two hosts' modelhubs on one registry, each with its own data dir."""
    apps = [make_app(database_url, tmp_path / "laptop", LAPTOP), make_app(database_url, tmp_path / "desktop", DESKTOP)]
    yield apps
    for app in apps:
        app.extensions["modelhub.supervisor"].shutdown()
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()


def poll(app) -> list[int]:
    """One look of the app's host-job poller, as its served process makes every second."""
    with app.app_context():
        return host_jobs.HostJobPoller(app, app.extensions["modelhub.supervisor"]).poll_once()


def register(client, name, directory, **fields):
    body = {"model_name": name, "cache_location": "custom", "cache_path": str(directory), **fields}
    assert client.post("/api/models", json=body).status_code == 201


def wait_for_attempt(app, attempt_id, timeout=120) -> LoadAttempt:
    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            attempt = db.session.get(LoadAttempt, attempt_id, populate_existing=True)
            db.session.commit()
            if attempt.outcome != "running":
                return attempt
            time.sleep(0.1)
    raise AssertionError(f"attempt {attempt_id} did not end")


def test_the_asked_host_claims_the_job_and_loads_in_its_own_environment(hosts, tiny_models):
    laptop, desktop = hosts
    client = laptop.test_client()
    register(client, "tiny/llama", tiny_models["llama"])
    assert poll(desktop) == []  # its first look registers its environment: the desktop becomes known
    job = client.post("/api/models/tiny/llama/load", json={"host": DESKTOP}).json
    assert job["state"] == "queued"
    assert poll(laptop) == []  # not the laptop's job

    assert poll(desktop) == [job["id"]]

    shown = client.get(f"/api/host-jobs/{job['id']}").json
    assert shown["state"] == "finished" and shown["run_id"] is not None and shown["claimed_by_pid"] == os.getpid()
    attempt = wait_for_attempt(laptop, shown["run_id"])
    assert attempt.outcome == "success", attempt.error_message
    with desktop.app_context():
        assert attempt.environment_id == environments.current_id(desktop)
        assert environments.current(desktop).host == DESKTOP
    with laptop.app_context():
        assert attempt.environment_id != environments.current_id(laptop)
    assert client.get(f"/api/host-jobs/{job['id']}").json["attempt_outcome"] == "success"
    # The desktop runs the worker (both apps share this process's pid: the servers' test below shows the
    # laptop seeing the lease), and the job is done.
    assert desktop.test_client().get("/api/models/tiny/llama/attempts").json["load_state"]["state"] == "loaded"
    assert desktop.extensions["modelhub.supervisor"].workers.keys() == {"tiny/llama"}
    assert laptop.extensions["modelhub.supervisor"].workers == {}
    assert poll(desktop) == []


def test_racing_processes_of_one_host_claim_each_job_once(hosts, database_url, tmp_path):
    laptop, desktop = hosts
    client = laptop.test_client()
    poll(desktop)
    for index in range(6):
        assert client.post("/api/models", json={"model_name": f"org/m{index}"}).status_code == 201
        assert client.post(f"/api/models/org/m{index}/load", json={"host": DESKTOP}).status_code == 202
    # Four more processes of the desktop (each its own app and connections), claiming at the same moment.
    racers = [make_app(database_url, tmp_path / f"desktop-{n}", DESKTOP) for n in range(4)]
    barrier, claimed = threading.Barrier(len(racers)), [[] for _ in racers]

    def claim_all(index, app):
        with app.app_context():
            barrier.wait()
            while (job := host_jobs.claim_next(DESKTOP)) is not None:
                claimed[index].append(job.id)

    threads = [threading.Thread(target=claim_all, args=pair) for pair in enumerate(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [job_id for ids in claimed for job_id in ids]
    with laptop.app_context():
        queued = [job.id for job in db.session.scalars(db.select(HostJob).order_by(HostJob.id))]
        assert {job.state for job in db.session.scalars(db.select(HostJob))} == {"claimed"}
    assert sorted(every) == queued  # each job claimed, none twice
    for app in racers:
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()


def test_a_load_the_host_cannot_start_fails_with_why(hosts, monkeypatch):
    laptop, desktop = hosts
    client = laptop.test_client()
    poll(desktop)
    client.post("/api/models", json={"model_name": "org/bad", "compatibility_status": "incompatible"})
    client.post("/api/models", json={"model_name": "org/later"})
    refused = client.post("/api/models/org/bad/load", json={"host": DESKTOP}).json

    assert poll(desktop) == [refused["id"]]

    shown = client.get(f"/api/host-jobs/{refused['id']}").json
    assert shown["state"] == "failed" and shown["run_id"] is None
    assert "marked incompatible" in shown["error"] and '{"force": true}' in shown["error"]
    assert client.get("/api/models/org/bad").json["compatibility_status"] == "incompatible"  # nothing moved

    monkeypatch.setattr("modelhub.loading.ml_stack.missing", lambda: ["torch"])
    no_stack = client.post("/api/models/org/later/load", json={"host": DESKTOP}).json
    poll(desktop)
    shown = client.get(f"/api/host-jobs/{no_stack['id']}").json
    assert shown["state"] == "failed" and "torch is not installed" in shown["error"]


def test_a_job_claimed_by_a_process_that_died_fails_instead_of_waiting_forever(hosts):
    laptop, desktop = hosts
    client = laptop.test_client()
    poll(desktop)
    client.post("/api/models", json={"model_name": "org/m"})
    job = client.post("/api/models/org/m/load", json={"host": DESKTOP}).json
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        gone.wait()
    with desktop.app_context():
        host_jobs.claim_next(DESKTOP)
        db.session.execute(db.update(HostJob).values(claimed_by_pid=gone.pid))
        db.session.commit()

    assert poll(desktop) == []

    shown = client.get(f"/api/host-jobs/{job['id']}").json
    assert shown["state"] == "failed" and f"({gone.pid})" in shown["error"] and "ask again" in shown["error"]


def test_a_host_is_known_once_its_modelhub_has_looked_for_jobs(hosts):
    laptop, desktop = hosts
    client = laptop.test_client()
    client.post("/api/models", json={"model_name": "org/m"})
    assert client.post("/api/models/org/m/load", json={"host": DESKTOP}).status_code == 400
    assert {host["host"] for host in client.get("/api/hosts").json} == {LAPTOP}

    poll(desktop)

    assert client.post("/api/models/org/m/load", json={"host": DESKTOP}).status_code == 202
    desktop_row = next(host for host in client.get("/api/hosts").json if host["host"] == DESKTOP)
    assert desktop_row["queued_jobs"] == 1 and not desktop_row["this_host"] and desktop_row["last_seen_at"]


# ---- real servers --------------------------------------------------------------------------------


@pytest.fixture
def servers(database_url, tmp_path):
    """A laptop and two processes of the desktop (servers with their own data dirs) on one PostgreSQL."""
    if database_url.startswith("sqlite"):
        pytest.skip("hosts share a registry through PostgreSQL")
    started = []
    for name, host in (("laptop", LAPTOP), ("desktop-1", DESKTOP), ("desktop-2", DESKTOP)):
        server = LiveServer(tmp_path / name, database_url, env={"MODELHUB_HOST_NAME": host, "MODELHUB_MAX_LOADED": "3"})
        server.start(timeout=90)
        started.append(server)
    yield started
    for server in reversed(started):
        server.stop()


def process_group(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[2])


@pytest.mark.slow
def test_two_hosts_on_one_postgresql_load_for_each_other(servers, tiny_models):
    laptop, desktop_1, desktop_2 = servers
    names = ["tiny/llama", "tiny/phi", "tiny/gpt2"]
    for name, kind in zip(names, ("llama", "phi", "gpt2")):
        body = {"model_name": name, "cache_location": "custom", "cache_path": str(tiny_models[kind])}
        assert requests.post(f"{laptop.url}/api/models", json=body, timeout=30).status_code == 201
    deadline = time.monotonic() + 30
    while DESKTOP not in {h["host"] for h in requests.get(f"{laptop.url}/api/hosts", timeout=30).json()}:
        assert time.monotonic() < deadline, "the desktop never registered its environment"
        time.sleep(0.2)
    hosts = {h["host"]: h for h in requests.get(f"{laptop.url}/api/hosts", timeout=30).json()}
    assert hosts[LAPTOP]["this_host"] and hosts[LAPTOP]["fingerprint"] != hosts[DESKTOP]["fingerprint"]

    jobs = [requests.post(f"{laptop.url}/api/models/{name}/load", json={"host": DESKTOP}, timeout=30) for name in names]
    assert [job.status_code for job in jobs] == [202] * 3, [job.text for job in jobs]

    finished = []
    for job in jobs:
        deadline = time.monotonic() + 60
        while (shown := requests.get(f"{laptop.url}{job.headers['Location']}", timeout=30).json())["state"] in (
                "queued", "claimed"):
            assert time.monotonic() < deadline, shown
            time.sleep(0.2)
        assert shown["state"] == "finished", shown
        finished.append(shown)
    # Each job claimed by one process of the desktop, never by the laptop; one attempt per model.
    desktop_pids = {desktop_1.process.pid, desktop_2.process.pid}
    assert all(process_group(job["claimed_by_pid"]) in desktop_pids for job in finished)
    for name, job in zip(names, finished):
        deadline = time.monotonic() + 120
        while (attempts := requests.get(f"{laptop.url}/api/models/{name}/attempts", timeout=30).json())[
                "items"][0]["outcome"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        [attempt] = attempts["items"]
        assert attempt["id"] == job["run_id"] and attempt["outcome"] == "success", attempt
        assert attempt["environment_id"] == hosts[DESKTOP]["environment_id"]
        assert process_group(attempts["load_state"]["pid"]) in desktop_pids  # the worker runs on the desktop
        final = requests.get(f"{laptop.url}{jobs[names.index(name)].headers['Location']}", timeout=30).json()
        assert final["attempt_outcome"] == "success"
    assert "rocm-desktop" in {job["host"] for job in requests.get(f"{laptop.url}/api/host-jobs", timeout=30).json()}

    # Conflicting outcomes, one per host: the laptop's own load of tiny/llama fails (flash-attention is not
    # installed here). Each environment keeps its own status; the registry's is not "degraded".
    patched = requests.patch(f"{laptop.url}/api/models/tiny/llama/config",
                             json={"load_config": '{"attn_implementation": "flash_attention_2"}'}, timeout=30)
    assert patched.status_code == 200, patched.text
    assert requests.post(f"{laptop.url}/api/models/tiny/llama/load", json={}, timeout=30).status_code == 202
    deadline = time.monotonic() + 120
    while (latest := requests.get(f"{laptop.url}/api/models/tiny/llama/attempts", timeout=30).json()[
            "items"][0])["outcome"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert (latest["outcome"], latest["environment_status"]) == ("failure", "incompatible"), latest
    assert latest["environment_id"] == hosts[LAPTOP]["environment_id"]
    seen_from_laptop = requests.get(f"{laptop.url}/api/models/tiny/llama/compatibility", timeout=30).json()
    seen_from_desktop = requests.get(f"{desktop_1.url}/api/models/tiny/llama/compatibility", timeout=30).json()
    assert seen_from_laptop["summary"] == seen_from_desktop["summary"] == "compatible"
    assert seen_from_laptop["here"]["status"] == "incompatible" and seen_from_desktop["here"]["status"] == "compatible"
    assert {row["host"]: row["status"] for row in seen_from_laptop["environments"]} == {
        LAPTOP: "incompatible", DESKTOP: "compatible"}
