"""modelhub/exceptions.py: every service error carries its HTTP status, and one handler per surface
answers it — the API's JSON error under /api/, an HTML page (or an HTMX fragment) elsewhere."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
from werkzeug.http import HTTP_STATUS_CODES

from modelhub import exceptions
from modelhub.exceptions import ModelhubError

ROW = SimpleNamespace(model_name="org/m", version=3, etag="3-abc")
# One instance of every error a service raises, as the service raises it.
RAISED = [
    exceptions.ModelNotFound("org/m"),
    exceptions.DuplicateModel("org/m"),
    exceptions.PreconditionFailed(ROW),
    exceptions.ConfigVersionNotFound("org/m", 7),
    exceptions.NothingToRestore("org/m", 2),
    exceptions.RestoreRefused("org/m", 2, "load_config: unknown key 'flash_magic'."),
    exceptions.WriteContention("Too many writers; retry shortly."),
    exceptions.LoadConflict("'org/m' is already loading."),
    exceptions.MLStackMissing("torch is not installed."),
    exceptions.NotLoaded("'org/m' is not loaded."),
    exceptions.ScanInProgress("A scan is already running."),
    exceptions.EnvironmentNotFound(7),
    exceptions.UnknownHost("laptop", ["desktop"]),
    exceptions.UnknownCopy("org/m", 9, [3, 4]),
    exceptions.CopyMissing("Copy 3 of 'org/m' (/models/m) is missing: the latest scan did not find it."),
    exceptions.HostJobNotFound(7),
    exceptions.HostJobConflict("Job 7 was already claimed by desktop."),
    exceptions.RetestConflict("A retest is already running on this host."),
    exceptions.AutoconfigureConflict("An auto-configure run for 'm' is already running (run 1)."),
    exceptions.AutoconfigureNotFound("No auto-configure run 7."),
    exceptions.NoProof("org/m"),
    exceptions.InvalidDocument({"format": ["Unknown."]}),
    exceptions.MalformedDocument({"_schema": ["Not JSON."]}),
    exceptions.DocumentTooLarge({"_schema": ["Too large."]}),
    exceptions.PlanChanged(plan=None),
    exceptions.Refusal(403, "Refused a cross-site request."),
]


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_class_is_exercised_here_and_says_its_status():
    assert {type(error) for error in RAISED} == set(_subclasses(ModelhubError))
    for error in RAISED:
        assert 400 <= error.status < 600, type(error).__name__
        assert str(error), type(error).__name__


@pytest.fixture
def raising_app(app):
    """The app with two routes that raise whatever error the test puts in ``app.to_raise``."""

    def boom(**_):
        raise app.to_raise

    app.add_url_rule("/api/test-raise", "api_raise", boom)
    app.add_url_rule("/test-raise", "page_raise", boom)
    return app


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("error", RAISED, ids=lambda error: type(error).__name__)
def test_each_surface_answers_with_the_errors_own_status(raising_app, error):
    raising_app.to_raise = error
    client = raising_app.test_client()

    api = client.get("/api/test-raise")
    assert api.status_code == error.status
    assert api.get_json() == {"code": error.status, "status": HTTP_STATUS_CODES[error.status], "message": str(error)}
    for name, value in error.headers().items():
        assert api.headers[name] == value

    page = client.get("/test-raise")
    assert page.status_code == error.status
    assert page.mimetype == "text/html"
    assert "<html" in page.get_data(as_text=True).lower()
    fragment = client.get("/test-raise", headers={"HX-Request": "true"})
    assert fragment.status_code == error.status
    assert "<html" not in fragment.get_data(as_text=True).lower()


def test_the_handlers_import_no_service():
    """errors.py (and the security layer above it) reach every error through modelhub.exceptions."""
    code = ("import sys, modelhub.security; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('modelhub'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert set(loaded) <= {"modelhub", "modelhub.errors", "modelhub.exceptions", "modelhub.messages", "modelhub.hookspecs",
                           "modelhub.security"}
