"""The per-test database (conftest's ``database_url``, a copy of a template migrated once per session):
each test starts at the newest migration with no rows, and what one test writes no other test sees."""

import pytest
from sqlalchemy import create_engine, text

from tests.support import head_revision

# One xdist worker runs both tests, so that one of them really follows the other.
pytestmark = pytest.mark.xdist_group("database-fixture")


def rows_and_revision(url: str) -> tuple[list[str], str]:
    engine = create_engine(url)  # a connection of its own, as a server in another process would open
    try:
        with engine.connect() as connection:
            names = connection.execute(text("SELECT model_name FROM modelregistry ORDER BY model_name")).scalars()
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return list(names), revision
    finally:
        engine.dispose()


def write_then_check(client, database_url, mine: str, theirs: str) -> None:
    assert rows_and_revision(database_url) == ([], head_revision())
    assert client.post("/api/models", json={"model_name": mine}).status_code == 201
    assert rows_and_revision(database_url)[0] == [mine]  # committed: another connection sees it
    assert client.get(f"/api/models/{theirs}").status_code == 404


def test_a_write_stays_in_its_own_test(client, database_url):
    write_then_check(client, database_url, "org/first", "org/second")


def test_the_other_write_stays_in_its_own_test_too(client, database_url):
    write_then_check(client, database_url, "org/second", "org/first")
