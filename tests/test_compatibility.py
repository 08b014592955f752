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


def mark_of(client, name):
    """The card's "here" mark as the Models page renders it (None: no mark)."""
    import re

    html = client.get("/models", query_string={"q": name}).get_data(as_text=True)
    card = html.split(f'data-model-name="{name}"', 1)[1].split("</li>", 1)[0]
    found = re.search(r'class="badge here-mark status-(\w+)"[^>]*>([^<]+)<', card)
    return (found.group(2), found.group(1)) if found else None


def test_the_cards_here_mark_says_when_this_host_differs(ctx, client, monkeypatch):
    registry.create_model({"model_name": "acme/alpha"})
    assert mark_of(client, "acme/alpha") is None  # nothing learned anywhere

    on_host(ctx, "rocm-desktop", monkeypatch)
    load("acme/alpha", "success")
    assert mark_of(client, "acme/alpha") is None  # this host's status is the registry's

    on_host(ctx, "cuda-laptop", monkeypatch)
    assert mark_of(client, "acme/alpha") == ("here: untested", "unknown")  # learned on the desktop only
    load("acme/alpha", "failure")
    assert status("acme/alpha") == "compatible"
    assert mark_of(client, "acme/alpha") == ("here: incompatible", "incompatible")
    # The card fragment (after a load or a save) carries the same mark.
    card = client.get("/models/acme/alpha/card").get_data(as_text=True)
    assert "here: incompatible" in card

    upgrade(ctx, monkeypatch)
    assert mark_of(client, "acme/alpha") == ("here: needs retest", "unknown")


def test_a_page_of_cards_reads_this_hosts_statuses_in_one_query(ctx, client, monkeypatch):
    """The load attempts behind a page of cards (this host's statuses, the inventory's last loads) are read
    in a fixed number of queries, whatever the number of cards: twice the cards, the same queries."""
    on_host(ctx, "laptop", monkeypatch)

    def attempt_queries(more: range) -> list[str]:
        """The statements reading load_attempt while the page renders, after adding the models ``more``."""
        from sqlalchemy import event

        for index in more:
            registry.create_model({"model_name": f"acme/m{index:02}"})
            load(f"acme/m{index:02}", "success" if index % 2 else "failure")
        statements = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        engine = registry.db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert client.get("/models").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return [s for s in statements if "load_attempt" in s]

    twelve = attempt_queries(range(12))
    assert len([s for s in twelve if "environment_status" in s]) == 2, twelve  # here-statuses, last loads
    # Besides: preflight's one read of this host's recent loads (its calibration; cached a few seconds).
    assert len(twelve) <= 3 and all("predicted_peak" in s for s in twelve if "environment_status" not in s), twelve
    twice = attempt_queries(range(12, 24))  # (preflight's read may come from its cache this time)
    assert len([s for s in twice if "environment_status" in s]) == 2 and len(twice) <= 3, twice


def test_the_modal_shows_where_it_loads(ctx, client, monkeypatch):
    registry.create_model({"model_name": "acme/alpha", "load_config": '{"dtype": "float16"}'})
    on_host(ctx, "rocm-desktop", monkeypatch)
    load("acme/alpha", "failure", error_type="RuntimeError", error_message="HIP error: invalid device function")
    on_host(ctx, "cuda-laptop", monkeypatch)
    load("acme/alpha", "success", load_report={"degraded_reason": "2 layers offloaded to the CPU"})
    upgrade(ctx, monkeypatch)
    html = client.get("/models/acme/alpha/details").get_data(as_text=True)
    section = html.split('id="where-it-loads"', 1)[1].split("</section>", 1)[0]
    rows = section.split('<tr class="where-row')[1:]
    assert len(rows) == 2
    laptop, desktop = rows  # newest first: the laptop's (stale after its upgrade), then the desktop's
    assert "cuda-laptop · " in laptop and "stale: this host has changed since" in laptop
    assert "status-degraded" in laptop and "2 layers offloaded to the CPU" in laptop
    assert "version 1" in laptop and "{&#34;dtype&#34;: &#34;float16&#34;}" in laptop
    assert "rocm-desktop · " in desktop and "status-incompatible" in desktop and "stale" not in desktop
    assert "this host" not in desktop

    load("acme/alpha", "success")  # now loaded on the new fingerprint
    fragment = client.get("/models/acme/alpha/where-it-loads").get_data(as_text=True)
    first = fragment.split('<tr class="where-row')[1]
    assert "where-here" in first and ">this host<" in first and "status-compatible" in first
    assert "superseded: not counted" in fragment  # the laptop's old environment


def test_the_modal_asks_another_host_to_load_the_model(ctx, client, monkeypatch):
    registry.create_model({"model_name": "acme/alpha"})
    on_host(ctx, "rocm-desktop", monkeypatch)  # the desktop's modelhub has run: a host of this registry
    on_host(ctx, "cuda-laptop", monkeypatch)
    html = client.get("/models/acme/alpha/details").get_data(as_text=True)
    form = html.split('class="load-on-host"', 1)[1].split("</form>", 1)[0]
    assert '<option value="rocm-desktop">' in form and "cuda-laptop" not in form  # never this host itself
    assert 'hx-trigger="every 2s"' not in html.split('id="where-it-loads"', 1)[1].split(">", 1)[0]

    asked = client.post("/models/acme/alpha/load-on-host", data={"host": "rocm-desktop"})
    section = asked.get_data(as_text=True)
    assert asked.status_code == 200
    assert "Asked rocm-desktop to load it (job 1)" in section and "A load waits for rocm-desktop (job 1" in section
    assert 'hx-trigger="every 2s"' in section.split(">", 1)[0]  # it follows the job until the desktop takes it
    job = client.get("/api/host-jobs/1").json
    assert (job["host"], job["state"], job["model_name"]) == ("rocm-desktop", "queued", "acme/alpha")

    again = client.post("/models/acme/alpha/load-on-host", data={"host": "rocm-desktop"}).get_data(as_text=True)
    assert "already waits for &#39;rocm-desktop&#39; (job 1)" in again
    unknown = client.post("/models/acme/alpha/load-on-host", data={"host": "mars"}).get_data(as_text=True)
    assert "mars" in unknown and len(client.get("/api/host-jobs").json) == 1  # nothing more queued
