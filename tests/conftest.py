"""Fixtures: a fresh registry database per test, on SQLite always and on PostgreSQL when
``MODELHUB_TEST_DATABASE_URL`` is set (``.ci/run`` sets it), an app and client on it, and a real
server on loopback."""

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelhub.app import create_app
from tests.support import LiveServer

BACKENDS = ["sqlite", "postgresql"]


# The whole suite runs in WORKERS processes (pytest-xdist): much of its time is spent waiting on servers,
# model-loading workers and timeouts rather than on the CPU. A run that names files or directories stays
# in one process, where starting workers would cost more than it saves; `-n N` or `-p no:xdist` choose.
WORKERS = 2  # one per core here: tests/loading took 162 s with 2 workers, 272 s in one process, 251 s with 3
# Modules whose tests run one after another in the same worker (xdist groups). "timing": their assertions
# measure time (timeouts, latencies, racing writers), so they never race each other (the other workers
# still run the rest meanwhile). "packaging": both share one built wheel (test_packaging._built).
SHARED_WORKER = {
    "tests/serving/test_slow_clients.py": "timing", "tests/reliability/test_locked_database.py": "timing",
    "tests/reliability/test_storm.py": "timing", "tests/reliability/test_multi_process.py": "timing",
    "tests/measuring/test_metrics.py": "timing",
    "tests/test_packaging.py": "packaging", "tests/test_packaging_ml.py": "packaging",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which turns the number into workers
def pytest_cmdline_main(config):
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    if (config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput")
            and config.option.numprocesses is None and whole_suite):
        config.option.numprocesses = WORKERS
    if getattr(config.option, "numprocesses", None) and config.option.dist == "no":
        config.option.dist = "loadgroup"  # xdist's scheduling that honours the groups below


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.nodeid.split("::")[0]
        group = SHARED_WORKER.get(module)
        if group is None and _uses_a_module_fixture(item):
            group = module  # its module's server (or venv) is then started once, not once per worker
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))


def _uses_a_module_fixture(item) -> bool:
    fixtures = getattr(item, "_fixtureinfo", None)  # pytest's own record of the test's fixtures
    return bool(fixtures) and any(defs[-1].scope == "module" for defs in fixtures.name2fixturedefs.values())


@pytest.fixture(autouse=True)
def _timing_runs_alone(request):
    """Under xdist, a test of a "timing" module runs while no other worker runs a test: it holds the
    run's lock file exclusively, every other test holds it shared. Its measurements (latencies, decode
    rates against a direct loop, timeouts) would otherwise count the other worker's CPU on these 2 cores."""
    workerinput = getattr(request.config, "workerinput", None)
    if workerinput is None:  # one process: nothing runs beside it
        yield
        return
    alone = SHARED_WORKER.get(request.node.nodeid.split("::")[0]) == "timing"
    lock_path = Path(tempfile.gettempdir()) / f"modelhub-tests-{workerinput['testrunuid']}.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No test reads the developer's own registry or settings."""
    for name in list(os.environ):
        if name.startswith("MODELHUB_") and name != "MODELHUB_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODELHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Nor the other tools' libraries of the machine running the tests (~/.ollama, ~/.lmstudio...): a
    # test that scans them names its own.
    monkeypatch.setenv("MODELHUB_LIBRARIES", "none")
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A database at the newest migration holding no rows: a new SQLite file, or a new schema in the
    test PostgreSQL database. Each is a copy of a template migrated once per session, so that a test
    does not pay for running every migration (the app's start-up upgrade then finds nothing to do).
    The copy is committed, so servers and workers in other processes see it as it is."""
    if request.param == "sqlite":
        path = tmp_path / "data" / "models.db"
        path.parent.mkdir()
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    base = os.environ.get("MODELHUB_TEST_DATABASE_URL")
    if not base:
        pytest.skip("set MODELHUB_TEST_DATABASE_URL to run the PostgreSQL variant")
    dump = request.getfixturevalue("_postgres_template")
    schemas = _postgres_schema(base, dump)
    url = next(schemas)
    if dump is None:
        _migrate(url)  # no pg_dump on this machine: migrate the schema itself
    yield url
    next(schemas, None)  # drops it


def _migrate(url: str) -> None:
    """Run every migration on the database at ``url``, as a first start-up does."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url}, web=False)
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "models.db"
    _migrate(f"sqlite:///{path}")  # closing the last connection checkpoints the WAL: the file holds it all
    return path


@pytest.fixture(scope="session")
def _postgres_template() -> str | None:
    """The SQL that recreates a migrated schema (pg_dump of a template schema: its tables, sequences and
    alembic_version row), its name replaced by ``{schema}``; None where pg_dump is missing."""
    if not shutil.which("pg_dump"):
        return None
    base = os.environ["MODELHUB_TEST_DATABASE_URL"]
    schemas = _postgres_schema(base)
    url = next(schemas)
    _migrate(url)
    schema = make_url(url).query["options"].removeprefix("-csearch_path=")
    libpq_url = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    dump = subprocess.run(["pg_dump", "--no-owner", "--no-privileges", "--inserts", "-n", schema, libpq_url],
                          check=True, capture_output=True, text=True, timeout=60).stdout
    next(schemas, None)  # drops the template schema
    lines = [line for line in dump.splitlines() if not line.startswith("\\")]  # psql's own commands (\restrict)
    return "\n".join(lines).replace(schema, "{schema}")


def _postgres_schema(base_url: str, dump: str | None = None):
    """A new schema, filled by ``dump`` (it creates the schema itself) or else empty. A generator: the
    first ``next`` gives its URL, the second drops it."""
    schema = f"mh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if dump:
            connection.connection.driver_connection.execute(dump.replace("{schema}", schema))
        else:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_HOME": str(tmp_path)})
    yield app
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def stored(app):
    """Read a model's row straight from the database, bypassing the app's session and schemas."""

    def read(model_name: str) -> dict | None:
        engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        try:
            with engine.connect() as connection:
                row = connection.execute(
                    text("SELECT * FROM modelregistry WHERE model_name = :name"), {"name": model_name}
                ).mappings().first()
            return dict(row) if row else None
        finally:
            engine.dispose()

    return read


@pytest.fixture
def live_server(database_url, tmp_path):
    """``modelhub serve`` in a subprocess on a free loopback port."""
    server = LiveServer(tmp_path / "server-home", database_url)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """``{"llama": dir, "phi": dir, "gpt2": dir}``: tiny real models built once per session."""
    from tests.tiny_models import build_all

    return build_all(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def gguf_model_files(tmp_path_factory):
    """A tiny Qwen2 and real GGUF files of it (several types, and two transformers refuses), written by the
    gguf package: tests/gguf_files.py. Built once per session."""
    from tests.gguf_files import build_all

    return build_all(tmp_path_factory.mktemp("gguf-models"))


PLUGIN_PACKAGES = Path(__file__).resolve().parent / "plugin_packages"


@pytest.fixture(scope="session")
def test_plugins_site(tmp_path_factory):
    """tests/plugin_packages pip-installed (as users install plugins) into a directory of its own."""
    source = tmp_path_factory.mktemp("plugin-source") / "package"
    shutil.copytree(PLUGIN_PACKAGES, source)  # pip builds in place; keep the repository clean
    site = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(source)],
        check=True, capture_output=True, timeout=120,
    )
    return site


@pytest.fixture
def with_test_plugins(test_plugins_site, monkeypatch):
    """Make the test plugins visible to this process (entry points are found on sys.path) and to the
    processes it starts (servers, load workers)."""
    monkeypatch.syspath_prepend(str(test_plugins_site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(test_plugins_site), os.environ.get("PYTHONPATH")])))
    return test_plugins_site


@pytest.fixture
def caches(tmp_path, tiny_models, monkeypatch):
    """Models on disk to discover: a hub cache holding a Llama; a second disk (a secondary root) holding
    a GPT-2, a copy of the Llama and a folder whose config.json is broken. Returns (hub, disk2)."""
    from tests.discovery.trees import add_hub_repo, copy_plain, read_files

    hub, disk2 = tmp_path / "hf" / "hub", tmp_path / "disk2"
    add_hub_repo(hub, "tiny-org/llama", read_files(tiny_models["llama"]))
    copy_plain(disk2, "tiny-org/llama", tiny_models["llama"])
    copy_plain(disk2, "gpt2-tiny", tiny_models["gpt2"])
    (disk2 / "broken").mkdir()
    (disk2 / "broken" / "config.json").write_text("{not json")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("MODELHUB_SECONDARY_CACHE", str(disk2))
    return hub, disk2
