"""Where a model loads, in a real browser: the card's "here" mark when this host's status differs from the
registry's, and the details modal's "Where it loads" table.

The server is a real ``modelhub serve``; the results of other hosts (and of this host before an upgrade)
are recorded in its registry by the real service functions of a second app on the same SQLite file,
running as those hosts (their own MODELHUB_HOST_NAME or library versions, hence their own environments)."""

import pytest
import requests
from playwright.sync_api import expect

from modelhub import environments
from modelhub import registry as models
from modelhub.app import create_app
from modelhub.loading import attempts
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.slow


@pytest.fixture
def other_hosts(server, monkeypatch):
    """Records attempts in the server's registry as ``host``: ``record(host, name, outcome, ...)``;
    ``upgraded=True``: with other library versions (this host before its upgrade)."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": server.database_url}, web=False)
    real = environments.library_versions()

    def record(host, name, outcome, upgraded=False, **details):
        with app.app_context():
            monkeypatch.setitem(app.config, "MODELHUB_HOST_NAME", host)
            monkeypatch.setattr(environments, "library_versions",
                                lambda: {**real, "transformers": "4.57.0"} if upgraded else real)
            environments.forget_cached(app)
            attempt = attempts.begin(models.get_model(name))
            attempts.finish(attempt.id, outcome, **details)
            return environments.current_id(app)

    yield record
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def card(page, name):
    return page.locator(".model-card", has=page.locator(f'.model-name[data-model-name="{name}"]'))


def test_the_here_mark_and_the_where_it_loads_table(page, server, registry, other_hosts):
    current = next(row for row in requests.get(f"{server.url}/api/environments", timeout=5).json() if row["current"])
    this_host = current["host"]
    for name in ("acme/alpha", "acme/beta", "acme/gamma", "acme/delta"):
        registry.add(model_name=name, load_config='{"dtype": "float16"}' if name == "acme/alpha" else None)

    # alpha: loads on the ROCm desktop, offloaded on the laptop, fails here.
    other_hosts("rocm-desktop", "acme/alpha", "success")
    other_hosts("cuda-laptop", "acme/alpha", "success", load_report={"degraded_reason": "2 of 4 layers sit on the CPU"})
    here = other_hosts(this_host, "acme/alpha", "failure", error_type="RuntimeError", error_message="CUDA error")
    assert here == current["id"], "the second app must see the server's own environment"
    other_hosts("rocm-desktop", "acme/beta", "success")  # beta: learned on the desktop only
    other_hosts(this_host, "acme/gamma", "success", upgraded=True)  # gamma: only before this host's upgrade
    other_hosts(this_host, "acme/delta", "success")  # delta: here, as the registry says

    page.goto("/")
    expect(card(page, "acme/alpha").locator(".status-badge")).to_have_text("compatible")
    expect(card(page, "acme/alpha").locator(".here-mark")).to_have_text("here: incompatible")
    expect(card(page, "acme/alpha").locator(".here-mark")).to_have_class("badge here-mark status-incompatible")
    expect(card(page, "acme/beta").locator(".here-mark")).to_have_text("here: untested")
    expect(card(page, "acme/gamma").locator(".here-mark")).to_have_text("here: needs retest")
    expect(card(page, "acme/delta").locator(".here-mark")).to_have_count(0)
    screenshot(page, "where-it-loads-cards")

    # gamma: its only result is from this host before the upgrade.
    page.locator('.model-name[data-model-name="acme/gamma"]').click()
    stale = page.locator("#model-modal .where-table tbody tr")
    expect(stale).to_have_count(1)
    expect(stale.locator(".stale-note")).to_have_text("stale: this host has changed since")
    expect(stale.locator(".this-host")).to_have_count(0)
    expect(stale).to_contain_text("transformers 4.57.0")
    page.get_by_role("button", name="Cancel").click()

    # alpha: three environments, this host's first. (Shot last: a screenshot leaves style attributes that
    # htmx would copy onto the next modal's content, which the Content-Security-Policy refuses.)
    page.locator('.model-name[data-model-name="acme/alpha"]').click()
    table = page.locator("#model-modal .where-table")
    expect(table).to_be_visible()
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(3)
    first = rows.nth(0)
    expect(first.locator(".this-host")).to_have_text("this host")
    expect(first.locator(".status-badge")).to_have_text("incompatible")
    expect(first).to_contain_text(f"{this_host} · ")
    expect(first).to_contain_text("version 1")
    expect(first).to_contain_text('{"dtype": "float16"}')
    laptop = table.locator("tr", has_text="cuda-laptop")
    expect(laptop.locator(".status-badge")).to_have_text("degraded")
    expect(laptop).to_contain_text("2 of 4 layers sit on the CPU")
    expect(table.locator("tr", has_text="rocm-desktop").locator(".status-badge")).to_have_text("compatible")
    expect(table.locator(".this-host")).to_have_count(1)
    expect(table.locator(".stale-note")).to_have_count(0)

    # Ask the desktop to load it: the job waits (no desktop modelhub runs in this test) and the section says so.
    asking = page.locator("#model-modal form.load-on-host")
    asking.locator("select").select_option("rocm-desktop")
    asking.get_by_role("button", name="Load there").click()
    expect(page.locator("#model-modal .where-message")).to_contain_text("Asked rocm-desktop to load it (job 1)")
    expect(page.locator("#model-modal .where-waiting")).to_contain_text("A load waits for rocm-desktop (job 1")
    expect(page.locator("#model-modal .where-table tbody tr")).to_have_count(3)
    page.locator("#model-modal .where-it-loads").scroll_into_view_if_needed()
    screenshot(page, "where-it-loads-modal", full_page=False)
