"""Results per environment (modelhub/compatibility.py): which host learned what, with which config, and
which results this host's upgrade made stale."""

import pytest

from modelhub import compatibility, environments, registry
from modelhub.loading import attempts


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
        environments.forget_cached(app)


def on_host(app, host, monkeypatch):
    """Run what follows as host ``host`` (its own environment, registered now)."""
    monkeypatch.setitem(app.config, "MODELHUB_HOST_NAME", host)
    environments.forget_cached(app)
    return environments.current_id(app)


def upgrade(app, monkeypatch, transformers="99.0.0"):
    """This host's transformers changes: a new fingerprint, as after an upgrade and a restart."""
    real = environments.library_versions()
    monkeypatch.setattr(environments, "library_versions", lambda: {**real, "transformers": transformers})
    environments.forget_cached(app)
    return environments.current_id(app)


def load(name, outcome, **details):
    """An attempt on ``name`` in the current environment, ended with ``outcome`` (``details``: its columns)."""
    attempt = attempts.begin(registry.get_model(name))
    return attempts.finish(attempt.id, outcome, **details)


def status(name):
    registry.db.session.expire_all()
    return registry.get_model(name).compatibility_status


def test_needing_retest_lists_models_learned_only_before_this_hosts_upgrade(ctx, monkeypatch):
    for name in ("acme/alpha", "acme/beta", "acme/gamma", "acme/delta"):
        registry.create_model({"model_name": name})
    on_host(ctx, "laptop", monkeypatch)
    load("acme/alpha", "success")
    load("acme/beta", "failure")
    load("acme/gamma", "interrupted")  # taught nothing
    on_host(ctx, "desktop", monkeypatch)
    load("acme/delta", "success")  # another host's result: not this host's to retest
    on_host(ctx, "laptop", monkeypatch)
    assert compatibility.needing_retest(ctx) == [] and compatibility.retest_count(ctx) == 0

    upgrade(ctx, monkeypatch)
    assert compatibility.needing_retest(ctx) == ["acme/alpha", "acme/beta"]
    assert compatibility.retest_count(ctx) == 2

    load("acme/beta", "success")  # retested on the new fingerprint
    assert compatibility.needing_retest(ctx) == ["acme/alpha"]
    assert compatibility.retest_count(ctx) == 1
