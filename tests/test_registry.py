"""The registry service: guarded writes, and unguarded writes that lose nothing to a concurrent writer."""

import threading

import pytest
from sqlalchemy import create_engine, event, text

from modelhub import registry
from modelhub.exceptions import ModelNotFound, PreconditionFailed
from modelhub.extensions import db


@pytest.fixture
def ctx(app):
    with app.app_context():
        registry.create_model({"model_name": "microsoft/phi-2", "compatibility_notes": "original"})
        yield app


OTHER_WRITE = text("UPDATE modelregistry SET compatibility_notes = 'from elsewhere', version = version + 1 "
                   "WHERE model_name = 'microsoft/phi-2'")


@pytest.fixture
def other_connection(ctx):
    engine = create_engine(ctx.config["SQLALCHEMY_DATABASE_URI"])
    yield engine
    engine.dispose()


@pytest.fixture
def concurrent_writer(ctx, other_connection):
    """Another connection writes the row between the service's read and its write, once, from a thread
    of its own. On SQLite it gets in first (the service then retries on the newest row); on PostgreSQL
    the service holds the row it read locked, so the other write waits and lands after it."""
    started = []

    def write_from_elsewhere():
        with other_connection.begin() as connection:
            connection.execute(OTHER_WRITE)

    def write_first(session, flush_context, instances):
        if started:
            return
        thread = threading.Thread(target=write_from_elsewhere)
        started.append(thread)
        thread.start()
        thread.join(timeout=1)  # done at once unless the row is locked by the service

    event.listen(db.session, "before_flush", write_first)
    yield started
    event.remove(db.session, "before_flush", write_first)
    for thread in started:
        thread.join(timeout=30)


def stored_row(engine):
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT mmlu_score, compatibility_notes, version FROM modelregistry WHERE model_name = 'microsoft/phi-2'"
        )).one()


def test_unguarded_write_loses_nothing_to_a_concurrent_writer(ctx, concurrent_writer, other_connection):
    registry.update_model("microsoft/phi-2", {"mmlu_score": 72.5})
    concurrent_writer[0].join(timeout=30)

    assert len(concurrent_writer) == 1
    # Both writes are in the row, whichever went first: neither was lost.
    assert tuple(stored_row(other_connection)) == (72.5, "from elsewhere", 3)


def test_guarded_write_after_someone_else_changed_the_row_is_refused(ctx, other_connection):
    etag = registry.get_model("microsoft/phi-2").etag
    with other_connection.begin() as connection:
        connection.execute(OTHER_WRITE)

    with pytest.raises(PreconditionFailed):
        registry.update_model("microsoft/phi-2", {"mmlu_score": 72.5}, if_match=frozenset({etag}))

    assert tuple(stored_row(other_connection)) == (None, "from elsewhere", 2)


@pytest.mark.parametrize("if_match", [None, frozenset({"*"})], ids=["no If-Match", "If-Match *"])
def test_an_unconditional_delete_is_not_refused_by_a_concurrent_writer(ctx, concurrent_writer, other_connection, if_match):
    """A load finishing (its status written) between a DELETE's read and its delete must not make an
    unconditional DELETE a 412: the stateful fuzzer met exactly that."""
    registry.delete_model("microsoft/phi-2", if_match=if_match)
    concurrent_writer[0].join(timeout=30)
    with other_connection.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM modelregistry")).scalar() == 0


def test_a_delete_naming_a_version_someone_else_changed_is_refused(ctx, other_connection):
    etag = registry.get_model("microsoft/phi-2").etag
    with other_connection.begin() as connection:
        connection.execute(OTHER_WRITE)
    with pytest.raises(PreconditionFailed):
        registry.delete_model("microsoft/phi-2", if_match=frozenset({etag}))
    assert tuple(stored_row(other_connection)) == (None, "from elsewhere", 2)


def test_an_unconditional_update_with_a_star_retries_as_without_if_match(ctx, concurrent_writer, other_connection):
    registry.update_model("microsoft/phi-2", {"mmlu_score": 72.5}, if_match=frozenset({"*"}))
    concurrent_writer[0].join(timeout=30)
    assert tuple(stored_row(other_connection)) == (72.5, "from elsewhere", 3)


def test_an_unchanged_value_is_not_a_new_version(ctx):
    before = registry.get_model("microsoft/phi-2").version
    row = registry.update_model("microsoft/phi-2", {"compatibility_notes": "original"})
    assert row.version == before


def test_names_that_could_never_be_stored_are_simply_not_found(ctx):
    for name in ("a\x00b", "x" * 5000, "", "tab\tname"):
        with pytest.raises(ModelNotFound):
            registry.get_model(name)


def test_typing_a_metric_drops_its_recorded_source(ctx):
    sources = {"mmlu_score": {"source": "card", "dataset": "cais/mmlu"}, "perplexity": {"source": "measured"}}
    registry.update_model("microsoft/phi-2", {"mmlu_score": 72.0, "perplexity": 8.1, "metric_sources": sources})

    row = registry.update_model("microsoft/phi-2", {"mmlu_score": 70.0})

    assert row.metric_sources == {"perplexity": {"source": "measured"}}
    # Sending the stored value again (the modal sends every field) is not typing it.
    assert registry.update_model("microsoft/phi-2", {"perplexity": 8.1}).metric_sources == {"perplexity": {"source": "measured"}}
    assert registry.update_model("microsoft/phi-2", {"perplexity": None}).metric_sources is None
