"""Fixtures: a fresh registry database per test, on SQLite always and on PostgreSQL when
``MODELHUB_TEST_DATABASE_URL`` is set (``.ci/run`` sets it), an app and client on it, and a real
server on loopback."""

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelhub.app import create_app
from tests.support import LiveServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No test reads the developer's own registry or settings."""
    for name in list(os.environ):
        if name.startswith("MODELHUB_") and name != "MODELHUB_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODELHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """An empty database: a new SQLite file, or a new schema in the test PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'models.db'}"
        return
    base = os.environ.get("MODELHUB_TEST_DATABASE_URL")
    if not base:
        pytest.skip("set MODELHUB_TEST_DATABASE_URL to run the PostgreSQL variant")
    yield from _postgres_schema(base)


def _postgres_schema(base_url: str):
    schema = f"mh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
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
