"""Property: the loader never moves a model's status where the table of modelhub/loading/status_rules.py
does not allow, and no attempt's end leaves a model ``testing``.

A rule-based machine drives the real service functions on a real database (SQLite, PostgreSQL): loads
starting (attempts.begin, forced or not; unforced loads of an incompatible model go through the API
and must be refused), ending in success, failure or interruption (attempts.finish), a server restart
closing what was running (attempts.close_interrupted), users editing the status (registry.update_model)
and models deleted mid-load. Every observed transition is checked against the table, written out
again here (``allowed``) so that the code's rules (``next_status``, ``may_start``) are checked against
what the table says rather than against themselves.
"""

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from modelhub import registry
from modelhub.exceptions import ModelNotFound
from modelhub.extensions import db
from modelhub.loading import attempts
from modelhub.loading.status_rules import may_start
from modelhub.models import COMPATIBILITY_STATUSES, FINISHED_OUTCOMES, LoadAttempt

NAMES = ("acme/alpha", "acme/beta")

# What an ending may set, whatever came before (the table in modelhub/loading/status_rules.py).
AFTER_OUTCOME = {
    "success": frozenset({"compatible", "degraded"}),
    "failure": frozenset({"incompatible", "degraded"}),
    "interrupted": frozenset(COMPATIBILITY_STATUSES) - {"testing"},
}


def allowed(event: str, before: str, after: str, *, force: bool = False, status_at_start: str | None = None) -> bool:
    """Whether ``before`` -> ``after`` is a transition the table allows for ``event`` (``start``,
    ``edit``, or an outcome; ``status_at_start`` for ``interrupted``)."""
    if before not in COMPATIBILITY_STATUSES or after not in COMPATIBILITY_STATUSES:
        return False
    if event == "start":
        return after == "testing" and (before != "incompatible" or force)
    if event == "edit":
        return True
    if after not in AFTER_OUTCOME[event]:
        return False
    if event == "interrupted" and status_at_start is not None:
        return after == status_at_start or status_at_start == "testing"
    return True


def test_status_transitions_follow_the_rules(app):
    client = app.test_client()

    class Loader(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.running = {}  # name -> (attempt id, status when it began)
            self.transitions = []
            for name in NAMES:
                if _exists(name):
                    registry.delete_model(name)
                registry.create_model({"model_name": name})

        def status(self, name):
            db.session.expire_all()
            return registry.get_model(name).compatibility_status

        def observe(self, event, name, before, **facts):
            after = self.status(name)
            self.transitions.append((event, before, after))
            assert allowed(event, before, after, **facts), f"{event}: {before} -> {after} ({facts})"
            return after

        @rule(name=st.sampled_from(NAMES), force=st.booleans())
        def start(self, name, force):
            if name in self.running:
                return  # one load per model at a time (the supervisor's lease enforces it)
            before = self.status(name)
            if not may_start(before, force=force):
                response = client.post(f"/api/models/{name}/load", json={})
                assert response.status_code == 409 and "incompatible" in response.json["message"]
                assert self.status(name) == before
                return
            attempt = attempts.begin(registry.get_model(name))
            self.running[name] = (attempt.id, before)
            self.observe("start", name, before, force=force)

        @rule(name=st.sampled_from(NAMES), outcome=st.sampled_from(FINISHED_OUTCOMES))
        def finish(self, name, outcome):
            if name not in self.running:
                return
            attempt_id, at_start = self.running.pop(name)
            before = self.status(name)
            assert attempts.finish(attempt_id, outcome) is not None
            after = self.observe(outcome, name, before, status_at_start=at_start)
            assert after != "testing"

        @rule()
        def restart(self):
            befores = {name: self.status(name) for name in self.running}
            closed = attempts.close_interrupted()
            assert sorted(closed) == sorted(attempt_id for attempt_id, _ in self.running.values())
            for name, (_, at_start) in list(self.running.items()):
                assert self.observe("interrupted", name, befores[name], status_at_start=at_start) != "testing"
            self.running.clear()

        @rule(name=st.sampled_from(NAMES), status=st.sampled_from(COMPATIBILITY_STATUSES))
        def edit(self, name, status):
            before = self.status(name)
            registry.update_model(name, {"compatibility_status": status})
            assert self.observe("edit", name, before) == status

        @rule(name=st.sampled_from(NAMES), outcome=st.sampled_from(FINISHED_OUTCOMES))
        def delete_mid_load(self, name, outcome):
            """The model is deleted (and registered again) while a load runs: its end changes nothing."""
            if name not in self.running:
                return
            attempt_id, _ = self.running.pop(name)
            registry.delete_model(name)
            registry.create_model({"model_name": name})
            assert attempts.finish(attempt_id, outcome) is None
            assert self.status(name) == "unknown"

        @invariant()
        def testing_only_while_loading_or_set_by_hand(self):
            db.session.expire_all()
            running = set(db.session.scalars(db.select(LoadAttempt.model_id).where(LoadAttempt.outcome == "running")))
            for name in NAMES:
                model = registry.get_model(name)
                assert (model.id in running) == (name in self.running)

    with app.app_context():
        run_state_machine_as_test(Loader, settings=settings(
            max_examples=60, stateful_step_count=25, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(HealthCheck),
        ))


def _exists(name: str) -> bool:
    try:
        registry.get_model(name)
        return True
    except ModelNotFound:
        return False
