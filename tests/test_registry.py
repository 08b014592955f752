"""The registry service: guarded writes, and unguarded writes that lose nothing to a concurrent writer."""

import pytest
from sqlalchemy import create_engine, event, text

from modelhub import registry
from modelhub.extensions import db


@pytest.fixture
def ctx(app):
    with app.app_context():
        registry.create_model({"model_name": "microsoft/phi-2", "compatibility_notes": "original"})
        yield app


@pytest.fixture
def concurrent_writer(ctx):
    """Lets another connection change the row between the service's read and its write, once."""
    engine = create_engine(ctx.config["SQLALCHEMY_DATABASE_URI"])
    fired = []

    def write_first(session, flush_context, instances):
        if fired:
            return
        fired.append(True)
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE modelregistry SET compatibility_notes = 'from elsewhere', version = version + 1 "
                     "WHERE model_name = 'microsoft/phi-2'")
            )

    event.listen(db.session, "before_flush", write_first)
    yield fired
    event.remove(db.session, "before_flush", write_first)
    engine.dispose()


def test_unguarded_write_is_reapplied_on_the_newest_row(ctx, concurrent_writer):
    row = registry.update_model("microsoft/phi-2", {"mmlu_score": 72.5})

    assert concurrent_writer == [True]
    assert row.mmlu_score == 72.5
    assert row.compatibility_notes == "from elsewhere"  # the other writer's change survived
    assert row.version == 3


def test_guarded_write_loses_the_race_with_precondition_failed(ctx, concurrent_writer):
    etag = registry.get_model("microsoft/phi-2").etag

    with pytest.raises(registry.PreconditionFailed):
        registry.update_model("microsoft/phi-2", {"mmlu_score": 72.5}, if_match=frozenset({etag}))

    db.session.expire_all()
    row = registry.get_model("microsoft/phi-2")
    assert row.mmlu_score is None
    assert row.compatibility_notes == "from elsewhere"


def test_an_unchanged_value_is_not_a_new_version(ctx):
    before = registry.get_model("microsoft/phi-2").version
    row = registry.update_model("microsoft/phi-2", {"compatibility_notes": "original"})
    assert row.version == before


def test_names_that_could_never_be_stored_are_simply_not_found(ctx):
    for name in ("a\x00b", "x" * 5000, "", "tab\tname"):
        with pytest.raises(registry.ModelNotFound):
            registry.get_model(name)


def test_typing_a_metric_drops_its_recorded_source(ctx):
    sources = {"mmlu_score": {"source": "card", "dataset": "cais/mmlu"}, "perplexity": {"source": "measured"}}
    registry.update_model("microsoft/phi-2", {"mmlu_score": 72.0, "perplexity": 8.1, "metric_sources": sources})

    row = registry.update_model("microsoft/phi-2", {"mmlu_score": 70.0})

    assert row.metric_sources == {"perplexity": {"source": "measured"}}
    # Sending the stored value again (the modal sends every field) is not typing it.
    assert registry.update_model("microsoft/phi-2", {"perplexity": 8.1}).metric_sources == {"perplexity": {"source": "measured"}}
    assert registry.update_model("microsoft/phi-2", {"perplexity": None}).metric_sources is None
