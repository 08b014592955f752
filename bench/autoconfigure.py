"""Auto-configure benchmark: modelhub's search against a fixed ladder of fallbacks, on failures provoked for real.

Builds the tiny Llama of ``tests/tiny_models.py``, pip-installs the test plugins (``faults``: fused attention
failing with the real ROCm text unless eager, no bfloat16 on this "GPU", out of memory) into a temporary
directory, and runs the app in this process (``create_app``, SQLite, temporary ``MODELHUB_HOME``) through
its test client, every load in a real worker process. For each case (a start load_config that fails for a
provoked reason), in the same run and on the same model:

- **search**: the app's runner (``AutoconfigureRunner.start(..., background=False)``, what ``POST
  /api/models/{name}/autoconfigure`` runs in a thread), timed from its start until it has closed the run
  (it unloads the model that loaded before it does). Not polled through ``GET .../autoconfigure``: a poll
  landing while the run closes can close it as interrupted (see docs/benchmarks.md);
- **ladder**: the fixed ladder, cumulative: the start config, then each fallback *added to the config
  before it*, in this order: offload (device_map "auto" + a CPU budget), 8-bit, 4-bit (replaces 8-bit),
  eager attention, float16, float32 (replaces float16); the changes are the ones modelhub's plugins
  propose. Each try: ``PATCH .../config``, ``POST .../load`` (force), ``GET .../attempts`` every ``POLL`` s
  until the attempt has ended; it stops at the first that loads. The ladder knows nothing of the failure,
  as a retry loop that escalates does;
- **plain loads**: a load of a config that works (``{}``) the ladder's way, before each case and at the end.

Printed per case: tries to success (search vs ladder), wall time (search vs ladder), the search's overhead
per try as issue 14 states it, ``(search wall / tries) / median plain load``, and the search's wall over
the time spent inside its tries (its load attempts' started_at -> finished_at; a plain load's is printed
next to it), with where the rest went (setup, between tries, after the last). Targets (issue 14): fewer
tries than the ladder; overhead per try <= 1.1x a plain load. A case where nothing can load (out of memory
whatever the config) compares the tries spent before giving up. Not a test: times are printed, never asserted.

From the repo root (offline: the hub is unreachable), a few minutes on 2 cores:

    HF_HUB_OFFLINE=1 .venv/bin/python bench/autoconfigure.py

Exit status 0 on PASS, 1 on FAIL.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.*, bench.*

from bench.common import print_verdicts, stdout_to_stderr  # noqa: E402

POLL = 0.05  # seconds between looks at a run or an attempt, the same on every side
OVERHEAD_TARGET = 1.1
HIP_ERROR = ("HIP error: invalid device function\nHIP kernel errors might be asynchronously reported at some other API "
             "call, so the stacktrace below might be incorrect.\nFor debugging consider passing AMD_SERIALIZE_KERNEL=3\n"
             "Compile with `TORCH_USE_HIP_DSA` to enable device-side assertions.")


@dataclass
class Case:
    name: str
    what: str
    start: dict
    loads: bool = True  # False: no config loads; tries until giving up are compared


CASES = (
    Case("attention", "fused attention fails (ROCm's HIP 'invalid device function') unless eager",
         {"fault_attention": HIP_ERROR}),
    Case("bf16", "dtype bfloat16 on a host without bf16 (gfx10*)", {"dtype": "bfloat16", "fault_bf16_unsupported": True}),
    Case("bf16-and-attention", "both: no bf16 here, and fused attention fails",
         {"dtype": "bfloat16", "fault_bf16_unsupported": True, "fault_attention": HIP_ERROR}),
    Case("oom-always", "out of memory whatever the config (nothing can load)", {"fault_oom": True}, loads=False),
)


def ladder_steps(cpu_budget: str) -> list[tuple[str, dict]]:
    """The fixed ladder's fallbacks, each added to the config before it (the plugins' own changes)."""
    offload = {"device_map": "auto", "max_memory": {"cpu": cpu_budget}}
    return [
        ("offload", offload),
        ("8-bit", {"quantization_config": {"load_in_8bit": True, "llm_int8_enable_fp32_cpu_offload": True}}),
        ("4-bit", {"quantization_config": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                           "llm_int8_enable_fp32_cpu_offload": True}}),
        ("eager", {"attn_implementation": "eager"}),
        ("float16", {"dtype": "float16"}),
        ("float32", {"dtype": "float32"}),
    ]


def ladder_configs(start: dict, cpu_budget: str) -> list[dict]:
    configs, config = [dict(start)], dict(start)
    for _, changes in ladder_steps(cpu_budget):
        config = {**config, **changes}
        configs.append(config)
    return configs


def cpu_budget() -> str:
    """What the device_map plugin offers as the CPU budget (60% of the RAM free now)."""
    import psutil

    return f"{psutil.virtual_memory().available * 6 // 10 // 2**20}MiB"


@dataclass
class Tries:
    seconds: float
    tries: int
    loaded: dict | None  # the config that loaded, None: none did
    configs: list = field(default_factory=list)  # the configs tried, in order
    load_seconds: float = 0.0  # the attempts' own time (started_at -> ended_at), summed


class Bench:
    """The app in this process, driven through its test client as the UI and the CLI drive the server."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.inside: list[float] = []  # the plain loads' attempts, started_at -> finished_at

    def register(self, name: str, directory: Path) -> None:
        answer = self.client.post("/api/models", json={"model_name": name, "cache_location": "custom",
                                                       "cache_path": str(directory)})
        assert answer.status_code == 201, answer.json

    def save_config(self, name: str, config: dict) -> None:
        answer = self.client.patch(f"/api/models/{name}/config", json={"load_config": config})
        assert answer.status_code == 200, answer.json

    def load(self, name: str) -> tuple[float, dict]:
        """Load the saved config; the seconds from the request until the attempt has ended, and the attempt."""
        began = time.perf_counter()
        answer = self.client.post(f"/api/models/{name}/load", json={"force": True})  # as the runner's tries
        assert answer.status_code == 202, answer.json
        while True:
            attempt = self.client.get(f"/api/models/{name}/attempts").json["items"][0]
            if attempt["outcome"] != "running":
                return time.perf_counter() - began, attempt
            time.sleep(POLL)

    def unload(self, name: str) -> float:
        began = time.perf_counter()
        answer = self.client.post(f"/api/models/{name}/unload")
        assert answer.status_code == 200, answer.json
        while self.client.get(f"/api/models/{name}/attempts").json["load_state"]["state"] != "idle":
            time.sleep(POLL)
        return time.perf_counter() - began

    def plain_load(self, name: str) -> tuple[float, float]:
        """A config that works: (load seconds, unload seconds); its attempt's own seconds kept in ``inside``."""
        self.save_config(name, {})
        seconds, attempt = self.load(name)
        assert attempt["outcome"] == "success", attempt
        self.inside.append(attempt_seconds(attempt))
        return seconds, self.unload(name)

    def tries_in_order(self, name: str, configs: list[dict]) -> Tries:
        """Load each config in turn (saved first, as a user would) until one loads; unload it (not timed)."""
        seconds, spent, tried = 0.0, 0.0, []
        for config in configs:
            self.save_config(name, config)
            took, attempt = self.load(name)
            seconds += took
            spent += attempt_seconds(attempt)
            tried.append(config)
            if attempt["outcome"] == "success":
                self.unload(name)
                return Tries(seconds, len(tried), config, tried, spent)
        return Tries(seconds, len(tried), None, tried, spent)

    def search(self, name: str, start: dict) -> tuple[Tries, dict, dict]:
        """One auto-configure run of the start config, run by the app's runner in this thread (as the API's
        POST runs it in a thread of its own), timed from its start until it has closed the run: when its answer
        is there for the user. (The model that loaded is unloaded after that; the wall time until the runner
        returns, unload included, is printed too.)"""
        self.save_config(name, start)
        runner = self.app.extensions["modelhub.autoconfigure"]
        with self.app.app_context():
            began = time.perf_counter()
            run_id = runner.start(name, background=False).id
            returned = time.perf_counter() - began
            phases = run_phases(run_id)
            seconds = phases["answer"]
            print(f"    search {name}: answered in {seconds:.2f} s, the runner returned after {returned:.2f} s "
                  "(unloading the model that loaded)", flush=True)
        self.wait_idle(name)
        run = self.client.get(f"/api/autoconfigure-runs/{run_id}").json
        tried = [entry for entry in run["tries"] if entry["outcome"] != "skipped"]
        loaded = run["result_config"] if run["state"] == "succeeded" else None
        return Tries(seconds, len(tried), loaded, [entry["config"] for entry in tried], phases["in tries"]), run, phases

    def wait_idle(self, name: str) -> None:
        while self.client.get(f"/api/models/{name}/attempts").json["load_state"]["state"] != "idle":
            time.sleep(POLL)


def run_phases(run_id: int) -> dict:
    """Where a run's time went, from the database's timestamps: before its first try (setup), inside its
    tries (the load attempts), between them (classifying, choosing, preflight, the runner's polling) and
    after the last (recording the result, closing the run; the model that loaded is unloaded after)."""
    from sqlalchemy import select

    from modelhub.extensions import db
    from modelhub.models import AutoconfigureRun, LoadAttempt

    run = db.session.get(AutoconfigureRun, run_id)
    tries = list(db.session.scalars(select(LoadAttempt).where(LoadAttempt.autoconfigure_run_id == run_id)
                                    .order_by(LoadAttempt.id)))
    seconds = lambda began, ended: (ended - began).total_seconds()  # noqa: E731
    phases = {"setup": seconds(run.started_at, tries[0].started_at) if tries else 0.0,
              "in tries": sum(seconds(a.started_at, a.finished_at) for a in tries),
              "between tries": sum(seconds(a.finished_at, b.started_at) for a, b in zip(tries, tries[1:])),
              "after the last": seconds(tries[-1].finished_at, run.finished_at) if tries else 0.0,
              "answer": seconds(run.started_at, run.finished_at)}
    db.session.commit()
    return phases


def attempt_seconds(attempt: dict) -> float:
    began, ended = attempt.get("started_at"), attempt.get("finished_at")
    if not began or not ended:
        return 0.0
    return (datetime.fromisoformat(ended) - datetime.fromisoformat(began)).total_seconds()


def make_app(workdir: Path):
    """The app, with the test plugins visible to it and to its workers (as tests/conftest.py does)."""
    from tests.loading.fault_cases import install_test_plugins

    site = install_test_plugins(workdir / "plugins")
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["MODELHUB_EXAMPLE_LOG"] = str(workdir / "example-log.jsonl")
    from modelhub.app import create_app

    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'models.db'}",
                       "MODELHUB_HOME": str(workdir / "home"), "MODELHUB_LOAD_TIMEOUT": 120})


def run(workdir: Path, cases: tuple[Case, ...]) -> tuple[list[dict], list[float], list[float], list[float]]:
    from tests.tiny_models import build_all

    with stdout_to_stderr():
        models = build_all(workdir / "models")
    app = make_app(workdir)
    bench = Bench(app)
    budget = cpu_budget()
    plain, unloads, rows = [], [], []
    try:
        for case in cases:
            name = f"bench/{case.name}"
            bench.register(name, models["llama"])
            seconds, unload = bench.plain_load(name)  # also a warm-up of this model's files and the plugins
            plain.append(seconds)
            unloads.append(unload)
            searched, record, phases = bench.search(name, case.start)
            ladder = bench.tries_in_order(name, ladder_configs(case.start, budget))
            rows.append({"case": case, "search": searched, "ladder": ladder, "run": record, "phases": phases})
            print(f"{case.name}: search {searched.tries} tries {searched.seconds:.2f} s ({record['state']}), ladder "
                  f"{ladder.tries} tries {ladder.seconds:.2f} s", file=sys.stderr)
        seconds, unload = bench.plain_load(name)
        plain.append(seconds)
        unloads.append(unload)
    finally:
        app.extensions["modelhub.supervisor"].shutdown()
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
    return rows, plain, unloads, bench.inside


def describe(config: dict | None) -> str:
    if config is None:
        return "none"
    shown = {key: value for key, value in config.items() if not key.startswith("fault_")}
    return json.dumps(shown, sort_keys=True).replace("|", "\\|") if shown else "{}"


def report(rows: list[dict], plain: list[float], unloads: list[float], inside: list[float], elapsed: float) -> bool:
    floor = statistics.median(plain)
    api_floor = statistics.median(wall / own for wall, own in zip(plain, inside))
    print(f"## Auto-configure vs a fixed ladder, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end, "
          f"SQLite, the tiny Llama of tests/tiny_models.py; took {elapsed:.0f} s. Plain load (config `{{}}`, "
          f"`POST .../load` until its attempt has ended): median {floor:.2f} s of {len(plain)} "
          f"({', '.join(f'{s:.2f}' for s in plain)}); its wall over its attempt's own time: median {api_floor:.2f}x; "
          f"unload median {statistics.median(unloads):.2f} s.\n")
    print("| case | search tries | ladder tries | search s | ladder s | search s / try | per try / plain load "
          "| search s / its tries' own s | search found | ladder found |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    checks = []
    for row in rows:
        case, search, ladder = row["case"], row["search"], row["ladder"]
        per_try = search.seconds / search.tries / floor
        own = search.seconds / search.load_seconds
        print(f"| {case.name}: {case.what} | {search.tries} | {ladder.tries} | {search.seconds:.2f} | "
              f"{ladder.seconds:.2f} | {search.seconds / search.tries:.2f} | {per_try:.2f} | {own:.2f} | "
              f"{describe(search.loaded)} | {describe(ladder.loaded)} |")
        found = (search.loaded is not None) == case.loads
        goal = "tries to success" if case.loads else "tries before giving up"
        checks.append((f"{case.name}: {goal} {search.tries} vs ladder {ladder.tries} (fewer)"
                       + ("" if found else f"; search ended {row['run']['state']}: {row['run']['result_reason']}"),
                       found and search.tries < ladder.tries))
        checks.append((f"{case.name}: overhead per try {per_try:.2f}x a plain load (<= {OVERHEAD_TARGET})",
                       per_try <= OVERHEAD_TARGET))
        checks.append((f"{case.name}: search wall over its own tries' time {own:.2f}x, a plain load's {api_floor:.2f}x "
                       f"(<= {OVERHEAD_TARGET})", own <= OVERHEAD_TARGET))
    print("\nWhere the search's time went (seconds, from the run's and its attempts' timestamps in the database):\n")
    print("| case | search s | setup | in its tries | between tries | after the last (close) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        p = row["phases"]
        print(f"| {row['case'].name} | {row['search'].seconds:.2f} | {p['setup']:.2f} | {p['in tries']:.2f} | "
              f"{p['between tries']:.2f} | {p['after the last']:.2f} |")
    print("\nEach search's tries (outcome (kind) config; fault_* keys not shown):\n")
    for row in rows:
        chain = "; ".join(f"{entry['outcome']}{' (' + entry['kind'] + ')' if entry.get('kind') else ''} "
                          f"{describe(entry['config'])}" for entry in row["run"]["tries"])
        print(f"- {row['case'].name}: {chain}")
    print()
    passed = print_verdicts(checks)
    print(f"\n{'PASS' if passed else 'FAIL'}")
    return passed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=[case.name for case in CASES],
                        help="run only this case (repeatable); default: all")
    options = parser.parse_args(argv)
    cases = tuple(case for case in CASES if not options.case or case.name in options.case)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelhub-bench-autoconfigure-") as workdir:
        rows, plain, unloads, inside = run(Path(workdir), cases)
    return 0 if report(rows, plain, unloads, inside, time.monotonic() - began) else 1


if __name__ == "__main__":
    sys.exit(main())
