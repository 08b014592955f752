"""Start-up: each command imports what it needs and no more (bench/startup.py times them), and a database
already at the newest schema is opened without starting Alembic."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelhub import database
from modelhub.app import create_app
from tests.support import MODELHUB, head_revision

# Runs the command in a fresh interpreter, then writes the top-level packages it imported to a file.
_RUN_AND_LIST_IMPORTS = """
import json, sys
from modelhub.cli import main
try:
    main(sys.argv[2:], prog_name="modelhub")
except SystemExit:
    pass
with open(sys.argv[1], "w") as out:
    json.dump(sorted({name.split(".")[0] for name in sys.modules}), out)
"""
WEB_ONLY = {"flask_smorest", "apispec", "gunicorn", "alembic", "flask_migrate"}


def run_and_list_imports(tmp_path, *args) -> tuple[subprocess.CompletedProcess, set[str]]:
    listing = tmp_path / "imported.json"
    result = subprocess.run([sys.executable, "-c", _RUN_AND_LIST_IMPORTS, str(listing), "--data-dir",
                             str(tmp_path / "data"), *args], capture_output=True, text=True, timeout=60)
    return result, set(json.loads(listing.read_text()))


def test_version_imports_neither_flask_nor_the_database(tmp_path):
    result, imported = run_and_list_imports(tmp_path, "--version")
    assert result.stdout.startswith("modelhub, version ")
    assert not imported & {"flask", "sqlalchemy", "marshmallow", "werkzeug", "jinja2", "pluggy"}


def test_list_on_an_up_to_date_database_imports_no_migrations_views_or_server(tmp_path):
    _, imported_first = run_and_list_imports(tmp_path, "list")
    assert "alembic" in imported_first  # a new database: its schema is created
    result, imported = run_and_list_imports(tmp_path, "list")
    assert result.stdout.startswith("No models registered.")
    assert not imported & WEB_ONLY


def test_serve_refuses_an_exposed_address_before_building_the_app(tmp_path):
    result, imported = run_and_list_imports(tmp_path, "serve", "--host", "0.0.0.0")
    assert "every change must need a token" in result.stderr
    assert not (tmp_path / "data" / "models.db").exists()
    assert not imported & {"alembic", "flask_migrate"}


def test_newest_revision_is_alembics_head():
    assert database.newest_revision() == head_revision()


@pytest.mark.parametrize(
    "files, newest",
    [
        ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": 'revision: str = "b"\ndown_revision: str | None = "a"\n'},
         "b"),
        ({"a.py": "revision = 'a'\ndown_revision = None\n", "b.py": "revision = 'b'\ndown_revision = 'a'\n",
          "c.py": "revision = 'c'\ndown_revision = 'a'\n"}, None),  # two heads: Alembic decides
        ({"a.py": "revision = 'a'\ndown_revision = None\n", "m.py": "revision = 'm'\ndown_revision = ('a', 'x')\n",
          "x.py": "revision = 'x'\ndown_revision = None\n"}, "m"),  # a merge
        ({"a.py": "revision = make_id()\ndown_revision = None\n"}, None),  # not a plain value
    ],
)
def test_newest_revision_reads_the_files_or_leaves_it_to_alembic(tmp_path, monkeypatch, files, newest):
    (tmp_path / "versions").mkdir()
    for name, text in files.items():
        (tmp_path / "versions" / name).write_text(f'"""A migration."""\nimport sqlalchemy as sa\n{text}')
    monkeypatch.setattr(database, "migrations_dir", lambda: str(tmp_path))
    assert database.newest_revision() == newest


def test_a_database_at_the_newest_revision_is_not_migrated_again(database_url, monkeypatch):
    first = create_app({"SQLALCHEMY_DATABASE_URI": database_url}, web=False)
    with first.app_context():
        first.extensions["sqlalchemy"].engine.dispose()
    monkeypatch.setattr(database, "migrations", lambda app: pytest.fail("Alembic started on an up-to-date database"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url}, web=False)
    with app.app_context():
        assert database._revisions_in(app.extensions["sqlalchemy"].engine) == [head_revision()]
        app.extensions["sqlalchemy"].engine.dispose()


def test_an_app_for_the_command_line_has_no_views(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url}, web=False)
    assert [rule.rule for rule in app.url_map.iter_rules()] == ["/static/<path:filename>"]
    assert "modelhub.supervisor" in app.extensions
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def test_a_command_closes_its_connections_before_it_exits(tmp_path):
    """Its app pools nothing: closing the last connection checkpoints SQLite's WAL into models.db."""
    subprocess.run([MODELHUB, "--data-dir", str(tmp_path), "add", "gpt2"], check=True, capture_output=True, timeout=60)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["models.db"]


def test_flask_migrate_commands_are_there_for_a_developer(tmp_path):
    """``flask --app modelhub.app db ...`` (writing a migration) binds Flask-Migrate when it runs."""
    flask = str(Path(sys.executable).with_name("flask"))
    env = {**os.environ, "MODELHUB_HOME": str(tmp_path)}
    result = subprocess.run([flask, "--app", "modelhub.app", "db", "current"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert f"{head_revision()} (head)" in result.stdout
    shown = subprocess.run([flask, "--app", "modelhub.app", "db", "--help"], capture_output=True, text=True,
                           timeout=60, env=env).stdout
    assert "revision" in shown and "--directory" in shown
