"""Real headless Chromium (Debian's ``chromium``, driven by Playwright) against ``modelhub serve`` on
loopback. Where the browser is missing these tests fail under CI (they must run there) and are skipped
elsewhere with the command that installs it."""

import os
from contextlib import contextmanager
import sqlite3
from pathlib import Path

import pytest
import requests

from tests.support import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: run `bash tests/install-browser.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _watch_csp(browser)
        yield browser
        browser.close()


class Registry:
    """The server's registry, seen the way the user would check it: the API and the sqlite3 file."""

    def __init__(self, server: LiveServer):
        self.server = server
        self.api = f"{server.url}/api/models"

    def add(self, **fields) -> dict:
        response = requests.post(self.api, json=fields, timeout=5)
        assert response.status_code == 201, response.text
        return response.json()

    def patch(self, name: str, **config) -> None:
        assert requests.patch(f"{self.api}/{name}/config", json=config, timeout=5).status_code == 200

    def row(self, name: str) -> dict:
        with sqlite3.connect(self.server.home / "models.db") as connection:
            connection.row_factory = sqlite3.Row
            row = connection.execute("SELECT * FROM modelregistry WHERE model_name = ?", (name,)).fetchone()
        return dict(row)


@pytest.fixture
def server(tmp_path):
    server = LiveServer(tmp_path / "home")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def registry(server):
    return Registry(server)


# The pages must work under the server's Content-Security-Policy (no inline scripts, styles or handlers):
# every browser context reports each violation on the console (CSP_WATCH, and Chromium's own "Refused
# to ... Content Security Policy" lines), and any violation fails the test that caused it.
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
});
"""
_csp_violations: list[str] = []


def _watch_csp(browser) -> None:
    """Every context the tests open, however they open it, reports its CSP violations."""
    new_context = browser.new_context

    def watched_context(*args, **kwargs):
        context = new_context(*args, **kwargs)
        context.add_init_script(CSP_WATCH)
        context.on("console", lambda message: _csp_violations.append(message.text)
                   if "CSP violation" in message.text or "Content Security Policy" in message.text else None)
        return context

    browser.new_context = watched_context


def take_csp_violations() -> list[str]:
    """The violations reported so far in this test (and forget them)."""
    found = list(_csp_violations)
    _csp_violations.clear()
    return found


@pytest.fixture(autouse=True)
def no_csp_violations():
    _csp_violations.clear()
    yield
    violations = take_csp_violations()
    assert not violations, f"Content-Security-Policy violations: {violations}"


class PageWatch:
    """What the page said on the console, the requests it sent and any uncaught script error."""

    def __init__(self, page):
        self.console = []
        self.requests = []
        self.errors = []
        page.on("console", lambda message: self.console.append(message))
        page.on("request", lambda request: self.requests.append((request.method, request.url)))
        page.on("pageerror", lambda error: self.errors.append(error))

    def writes(self) -> list:
        return [r for r in self.requests if r[0] in ("PATCH", "POST", "PUT", "DELETE")]


@contextmanager
def watched_page(browser, base_url: str, width: int = 1200, height: int = 900):
    """A page of a fresh context on ``base_url``, watched (``page.watch``); an uncaught script error in it
    fails the test once the page is closed."""
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=base_url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.watch = PageWatch(page)
    yield page
    errors = page.watch.errors
    context.close()
    assert not errors, f"uncaught script errors: {errors}"


@pytest.fixture
def page(browser, server):
    with watched_page(browser, server.url) as page:
        yield page


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot as a test artifact (test-artifacts/NAME.png) and return its path.
    An open modal is shot as the user sees it (the viewport), since the dialog scrolls inside it."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
