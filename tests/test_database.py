"""The schema: table and columns under the names users query (modelregistry), migrations that agree with the models,
automatic upgrade at start, and the SQLite settings (WAL, busy timeout, foreign keys)."""

import shutil
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from modelhub import database
from modelhub.app import create_app
from modelhub.extensions import db
from modelhub.models import ModelRegistry
from tests.support import head_revision

SEED_COLUMNS = {
    "model_name", "hf_path", "cache_location", "cache_path", "compatibility_status", "compatibility_notes",
    "load_config", "mmlu_score", "gpqa_score", "hellaswag_score", "humaneval_score", "mbpp_score", "math_score",
    "truthfulqa_score", "perplexity", "max_throughput_tokens_sec", "avg_latency_ms", "quantization",
    "created_at", "updated_at", "version",
}


def test_table_is_modelregistry_with_the_seed_columns(app):
    with app.app_context():
        columns = {c["name"]: c for c in inspect(db.engine).get_columns("modelregistry")}
    assert SEED_COLUMNS <= set(columns)
    assert columns["load_config"]["type"].python_type is str
    assert not columns["model_name"]["nullable"]


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
def test_model_name_is_unique_in_the_database(app):
    with app.app_context():
        constraints = inspect(db.engine).get_unique_constraints("modelregistry")
    assert any(c["column_names"] == ["model_name"] for c in constraints)


# SQLite cannot reflect expression indexes, so alembic skips them there (with these warnings);
# test_the_migrations_create_the_declared_indexes checks them by name instead.
@pytest.mark.filterwarnings("ignore:autogenerate skipping", "ignore:Skipped unsupported reflection")
def test_migrations_and_models_agree(app):
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_the_migrations_create_the_declared_indexes(app):
    declared = {index.name for index in ModelRegistry.__table__.indexes}
    with app.app_context(), db.engine.connect() as connection:
        if db.engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'modelregistry' AND sql IS NOT NULL"
        else:
            query = "SELECT indexname FROM pg_indexes WHERE tablename = 'modelregistry' AND indexname LIKE 'ix_%'"
        created = set(connection.execute(text(query)).scalars())
    assert declared == {"ix_modelregistry_name_lower", "ix_modelregistry_status_name_lower"}
    assert created == declared


def test_status_default_is_unknown_in_the_database_itself(app):
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO modelregistry (model_name, hf_path, created_at, updated_at) VALUES ('raw', 'raw', :t, :t)"),
            {"t": "2026-01-01 00:00:00"},
        )
        row = connection.execute(text("SELECT compatibility_status, cache_location, version FROM modelregistry")).one()
    assert tuple(row) == ("unknown", "primary", 1)


def test_database_refuses_a_status_outside_the_five(app):
    from sqlalchemy.exc import IntegrityError

    with app.app_context(), pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO modelregistry (model_name, hf_path, compatibility_status, created_at, updated_at) "
                 "VALUES ('raw', 'raw', 'broken', :t, :t)"),
            {"t": "2026-01-01 00:00:00"},
        )


def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'models.db'}", "MODELHUB_BUSY_TIMEOUT": 2.5})
    with app.app_context(), db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 2500
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_default_database_is_models_db_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELHUB_HOME", str(tmp_path / "new" / "dir"))
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'new' / 'dir' / 'models.db'}"
    assert (tmp_path / "new" / "dir" / "models.db").is_file()


def test_database_url_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELHUB_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    create_app()
    assert (tmp_path / "elsewhere.db").is_file()


def test_start_up_upgrades_an_older_database_and_keeps_its_rows(database_url, tmp_path, monkeypatch):
    """A database at the newest revision meets a newer modelhub (one more migration): starting upgrades it."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    app.test_client().post("/api/models", json={"model_name": "microsoft/phi-2", "mmlu_score": 56.7})
    with app.app_context():
        db.engine.dispose()

    newer = tmp_path / "migrations"
    shutil.copytree(database.migrations_dir(), newer)
    (newer / "versions" / "9999_add_test_column.py").write_text(
        f'revision = "newer"\ndown_revision = "{head_revision()}"\nfrom alembic import op\nimport sqlalchemy as sa\n'
        "def upgrade():\n"
        '    with op.batch_alter_table("modelregistry") as batch:\n'
        '        batch.add_column(sa.Column("added_later", sa.Text(), nullable=True))\n'
        "def downgrade():\n"
        '    with op.batch_alter_table("modelregistry") as batch:\n'
        '        batch.drop_column("added_later")\n'
    )
    monkeypatch.setattr(database, "migrations_dir", lambda: str(newer))

    upgraded = create_app({"SQLALCHEMY_DATABASE_URI": database_url})

    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "newer"
        row = connection.execute(text("SELECT model_name, mmlu_score, added_later FROM modelregistry")).one()
    engine.dispose()
    assert tuple(row) == ("microsoft/phi-2", 56.7, None)
    with upgraded.app_context():
        db.engine.dispose()


def test_write_blocked_past_the_busy_timeout_is_503_with_retry_after(database_url, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_BUSY_TIMEOUT": 0.5})
    client = app.test_client()
    client.post("/api/models", json={"model_name": "gpt2"})

    locker = create_engine(database_url)
    with locker.connect() as connection:
        if locker.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(text("SELECT * FROM modelregistry FOR UPDATE"))
        started = time.monotonic()
        response = client.patch("/api/models/gpt2/config", json={"compatibility_status": "testing"})
        elapsed = time.monotonic() - started
        assert client.get("/api/models/gpt2").status_code == 200  # readers are not blocked
        connection.rollback()
    locker.dispose()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "busy" in response.json["message"]
    assert elapsed < 0.5 + 1
    assert client.get("/api/models/gpt2").json["compatibility_status"] == "unknown"
    with app.app_context():
        db.engine.dispose()
