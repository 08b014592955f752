"""Recording the end of an attempt: the attempt and the model's status change in one transaction, on
top of whatever a user wrote meanwhile."""

import pytest
from sqlalchemy import create_engine, event, text

from modelhub import registry
from modelhub.extensions import db
from modelhub.loading import attempts


@pytest.fixture
def ctx(app):
    with app.app_context():
        registry.create_model({"model_name": "tiny/llama", "compatibility_status": "compatible"})
        yield app


def test_the_status_moves_with_the_attempt_in_one_commit(ctx):
    attempt = attempts.begin(registry.get_model("tiny/llama"))
    commits = []

    def count(session):
        commits.append(1)

    event.listen(db.session, "after_commit", count)
    try:
        attempts.finish(attempt.id, "failure", error_type="Timeout", error_message="too slow")
    finally:
        event.remove(db.session, "after_commit", count)
    assert len(commits) == 1
    db.session.expire_all()
    assert registry.get_model("tiny/llama").compatibility_status == "incompatible"


def test_a_users_edit_during_the_finish_is_kept(ctx):
    attempt = attempts.begin(registry.get_model("tiny/llama"))
    engine = create_engine(ctx.config["SQLALCHEMY_DATABASE_URI"])
    fired = []

    def user_edits_first(session, flush_context, instances):
        if not fired:
            fired.append(True)
            with engine.begin() as connection:
                connection.execute(text("UPDATE modelregistry SET compatibility_notes = 'typed meanwhile', "
                                        "version = version + 1 WHERE model_name = 'tiny/llama'"))

    event.listen(db.session, "before_flush", user_edits_first)
    try:
        attempts.finish(attempt.id, "success")
    finally:
        event.remove(db.session, "before_flush", user_edits_first)
        engine.dispose()
    db.session.expire_all()
    model = registry.get_model("tiny/llama")
    assert (model.compatibility_status, model.compatibility_notes) == ("compatible", "typed meanwhile")
