"""A plain ``pip install .`` gives a working modelhub.

The wheel is built from a copy of the source tree (git's tracked and not-ignored files, so neither a
stale ``build/`` folder nor the editable install can leak into it), installed into a fresh virtual
environment that does not see the repository or the development venv, and then exercised: the
resources it must carry, the ``modelhub`` console script serving the pages, the API and the static
files from a directory outside the repository, the SQLite file it writes, and that none of this
imports the model-loading stack (torch, transformers). Without the ``ml`` extra a load is refused
up front saying what to install; with it (test_packaging_ml.py) models load.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import requests

from tests.support import LiveServer, head_revision

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SQLITE = shutil.which("sqlite3") or "/usr/bin/sqlite3"
HEAVY_MODULES = ("torch", "transformers")
IMPORT_LOG_VARIABLE = "PACKAGING_TEST_IMPORT_LOG"

# Put on PYTHONPATH for the installed interpreter: records every attempt to import a heavy module,
# even one inside ``try: ... except ImportError`` (they are not installed, so any import fails; a
# guarded import would go unnoticed otherwise). Inherited by gunicorn's forked workers.
SITECUSTOMIZE = textwrap.dedent(
    f"""
    import os, sys

    class _RecordHeavyImports:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {HEAVY_MODULES!r}:
                with open(os.environ[{IMPORT_LOG_VARIABLE!r}], "a") as log:
                    log.write(f"{{os.getpid()}} {{name}}\\n")
            return None

    if os.environ.get({IMPORT_LOG_VARIABLE!r}):
        sys.meta_path.insert(0, _RecordHeavyImports())
    """
)


def _run(command, *, timeout, **kwargs) -> subprocess.CompletedProcess:
    """Run ``command``; on failure or timeout, fail the test with its whole output."""
    shown = " ".join(map(str, command))
    try:
        result = subprocess.run(
            [str(part) for part in command], capture_output=True, text=True, timeout=timeout, **kwargs
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"timed out after {timeout} s: {shown}\nstdout:\n{error.stdout}\nstderr:\n{error.stderr}")
    if result.returncode != 0:
        pytest.fail(f"exit {result.returncode}: {shown}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def serve_installed(venv: Path, home: Path, cwd: Path) -> LiveServer:
    """``modelhub serve`` of the venv's install, started in ``cwd``, offline, with a clean environment."""
    server = LiveServer(home, executable=str(venv / "bin" / "modelhub"), env=_clean_environment(HF_HUB_OFFLINE=1),
                        cwd=cwd, inherit_env=False)
    server.start(timeout=60)
    return server


def _clean_environment(**extra) -> dict:
    """The environment for the installed interpreter: nothing that points back at the repository,
    the development venv or a developer's modelhub settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MODELHUB_")
        and name not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"}
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update({name: str(value) for name, value in extra.items()})
    return env


def _source_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True, timeout=30,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (REPO / name).is_file()})


_built: dict[str, Path] = {}  # the session's wheel, shared with test_packaging_ml.py


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory)


def build_wheel(tmp_path_factory) -> Path:
    """The wheel ``pip install .`` would build (isolated build, setuptools from pyproject.toml), built
    once per test session."""
    if "wheel" not in _built:
        _built["wheel"] = _build_wheel(tmp_path_factory)
    return _built["wheel"]


def _build_wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in _source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", dist, source],
         timeout=240, cwd=source, env=_clean_environment())
    wheels = list(dist.glob("modelhub-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {dist}, found {sorted(p.name for p in dist.iterdir())}"
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment (no system or development site-packages) with only the wheel
    and the dependencies pip resolves for it from the package index."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", root], timeout=120, env=_clean_environment())
    _run([root / "bin" / "python", "-m", "pip", "install", wheel],
         timeout=300, cwd=root, env=_clean_environment())
    return root


@pytest.fixture(scope="module")
def import_guard(tmp_path_factory) -> Path:
    """A directory holding the sitecustomize.py that records heavy imports (see SITECUSTOMIZE)."""
    guard = tmp_path_factory.mktemp("import-guard")
    (guard / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return guard


@pytest.fixture
def outside(tmp_path) -> Path:
    """A working directory that is not the repository."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    return directory


def _site_packages(venv: Path) -> Path:
    found = list((venv / "lib").glob("python3*/site-packages"))
    assert len(found) == 1, f"site-packages of {venv}: {found}"
    return found[0].resolve()


def test_wheel_carries_the_resources(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        console = archive.read(entry_points).decode()

    def has(pattern):
        return any(re.fullmatch(pattern, name) for name in names)

    expected = [
        r"modelhub/templates/[^/]+\.html",
        r"modelhub/templates/base\.html",
        r"modelhub/templates/models/models\.html",
        r"modelhub/static/css/modelhub\.css",
        r"modelhub/static/js/modelhub\.js",
        r"modelhub/static/vendor/htmx-2\.0\.11\.min\.js",
        r"modelhub/migrations/env\.py",
        r"modelhub/migrations/alembic\.ini",
        r"modelhub/migrations/script\.py\.mako",
        r"modelhub/migrations/versions/0001_[^/]+\.py",
        r"modelhub/migrations/versions/0002_[^/]+\.py",
        r"modelhub/plugins/__init__\.py",
        r"modelhub/api/models\.py",
    ]
    # Every Python package of the source tree, so a new subpackage missing from setup.cfg fails here.
    repo = Path(__file__).resolve().parent.parent
    expected += [re.escape(str(init.relative_to(repo))) for init in sorted((repo / "modelhub").rglob("__init__.py"))]
    # Every template, sub-folders included (setup.cfg's package_data pattern must reach them).
    expected += [re.escape(f"modelhub/templates/{t.relative_to(repo / 'templates').as_posix()}")
                 for t in sorted((repo / "templates").rglob("*.html"))]
    missing = [pattern for pattern in expected if not has(pattern)]
    assert not missing, f"{wheel.name} lacks {missing}; it holds:\n" + "\n".join(sorted(names))
    # Nothing from the repository root outside the package (tests, top-level templates/ ...).
    strays = sorted(n for n in names if not n.startswith(("modelhub/", "modelhub-")))
    assert not strays, f"{wheel.name} installs files outside the modelhub package: {strays}"
    assert re.search(r"^modelhub\s*=\s*modelhub\.cli:main$", console, re.MULTILINE), console


def test_installed_package_comes_from_the_new_venv(venv, outside):
    script = (
        "import modelhub, sys; from modelhub.paths import resource_dir; "
        "print(modelhub.__file__); "
        "print(*[resource_dir(n) for n in ('templates', 'static', 'migrations')], sep='\\n')"
    )
    result = _run([venv / "bin" / "python", "-c", script], timeout=60, cwd=outside, env=_clean_environment())
    module_file, *resources = [Path(line).resolve() for line in result.stdout.splitlines()]
    package = _site_packages(venv) / "modelhub"
    assert module_file == package / "__init__.py", f"modelhub imported from {module_file}, not {package}"
    for directory in resources:
        assert directory.parent == package, f"resource folder {directory} is not inside {package}"
        assert REPO not in directory.parents


def test_installed_server_serves_and_stores(venv, outside, tmp_path, import_guard):
    home = tmp_path / "home"
    import_log = tmp_path / "heavy-imports.log"
    env = _clean_environment(PYTHONPATH=import_guard, **{IMPORT_LOG_VARIABLE: import_log})
    # env is a clean copy of the environment, without what points at the development tree.
    server = LiveServer(home, executable=str(venv / "bin" / "modelhub"), env=env, cwd=outside, inherit_env=False)
    try:
        server.start(timeout=60)  # its own error carries the server log
        try:
            _exercise(server)
        except Exception as error:
            raise AssertionError(f"{error}\n--- server log ---\n{server.log}") from error
    finally:
        server.stop()

    assert "Traceback" not in server.log, server.log
    heavy = import_log.read_text() if import_log.exists() else ""
    assert not heavy, f"the server tried to import the model-loading stack (pid module):\n{heavy}"

    assert (home / "models.db").is_file(), f"no models.db in {home}: {sorted(os.listdir(home))}"
    rows = _run([SQLITE, "models.db", "SELECT model_name, load_config FROM modelregistry;"],
                timeout=30, cwd=home).stdout.splitlines()
    assert rows == ['microsoft/phi-2|{"attn_implementation": "eager"}'], rows
    version = _run([SQLITE, "models.db", "SELECT version_num FROM alembic_version;"], timeout=30, cwd=home)
    assert version.stdout.strip() == head_revision(), version.stdout


def _exercise(server: LiveServer) -> None:
    page = requests.get(f"{server.url}/", timeout=10)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html"), page.headers
    assert "Models" in page.text, page.text

    created = requests.post(f"{server.url}/api/models", json={"model_name": "microsoft/phi-2"}, timeout=10)
    assert created.status_code == 201, created.text

    changes = {
        "compatibility_status": "degraded",
        "compatibility_notes": "Works after restart",
        "load_config": json.dumps({"attn_implementation": "eager"}),
    }
    updated = requests.patch(f"{server.url}/api/models/microsoft/phi-2/config", json=changes, timeout=10)
    assert updated.status_code == 200, updated.text
    assert updated.json()["compatibility_status"] == "degraded", updated.text

    listed = requests.get(f"{server.url}/", timeout=10)
    assert listed.status_code == 200 and "microsoft/phi-2" in listed.text, listed.text

    spec = requests.get(f"{server.url}/api/openapi.json", timeout=10)
    assert spec.status_code == 200, spec.text
    assert "/api/models" in spec.json()["paths"], sorted(spec.json()["paths"])

    stylesheet = re.search(r'<link[^>]+href="([^"]*modelhub\.css[^"]*)"', page.text)
    assert stylesheet, f"no link to modelhub.css in the page:\n{page.text}"
    css = requests.get(requests.compat.urljoin(f"{server.url}/", stylesheet.group(1)), timeout=10)
    assert css.status_code == 200, f"{stylesheet.group(1)}: {css.status_code}"
    assert css.headers["Content-Type"].startswith("text/css"), css.headers
    assert css.content == (REPO / "static" / "css" / "modelhub.css").read_bytes()


APP_SCRIPT = textwrap.dedent(
    """
    import sys
    from modelhub.app import create_app

    client = create_app().test_client()
    responses = [
        client.get("/"),
        client.post("/api/models", json={"model_name": "microsoft/phi-2"}),
        client.patch("/api/models/microsoft/phi-2/config", json={"compatibility_status": "compatible"}),
        client.get("/api/models?status=compatible"),
        client.get("/api/openapi.json"),
    ]
    codes = [response.status_code for response in responses]
    assert codes == [200, 201, 200, 200, 200], [(r.status_code, r.get_data(as_text=True)[:300]) for r in responses]
    assert responses[3].get_json()["pagination"]["total"] == 1, responses[3].get_json()
    heavy = sorted(name for name in sys.modules if name.partition(".")[0] in ("torch", "transformers"))
    assert not heavy, heavy
    print("ok")
    """
)


def test_app_does_not_import_the_model_stack(venv, outside, tmp_path, import_guard):
    python = venv / "bin" / "python"

    # The guard itself works: an import attempt, even a caught one, is recorded.
    canary_log = tmp_path / "canary.log"
    _run([python, "-c", "try:\n import torch\nexcept ImportError:\n pass"], timeout=60, cwd=outside,
         env=_clean_environment(PYTHONPATH=import_guard, **{IMPORT_LOG_VARIABLE: canary_log}))
    assert canary_log.exists() and "torch" in canary_log.read_text(), "the import guard recorded nothing"

    import_log = tmp_path / "heavy-imports.log"
    env = _clean_environment(
        PYTHONPATH=import_guard, MODELHUB_HOME=tmp_path / "home", **{IMPORT_LOG_VARIABLE: import_log}
    )
    result = _run([python, "-c", APP_SCRIPT], timeout=120, cwd=outside, env=env)
    assert result.stdout.strip() == "ok", result.stdout + result.stderr
    heavy = import_log.read_text() if import_log.exists() else ""
    assert not heavy, f"creating and using the app tried to import (pid module):\n{heavy}"


# ---- without the ML stack: refused up front, saying what to install --------------------------------------

INSTALL_HINTS = ('pip install "modelhub[ml]"', 'pip install ".[ml]"', 'pip install "modelhub[ml-own-torch]"')


def _assert_says_what_to_install(message: str) -> None:
    assert "torch and transformers are not installed" in message, message
    for hint in INSTALL_HINTS:
        assert hint in message, message


def test_without_the_ml_extra_loads_are_refused_saying_what_to_install(venv, outside, tmp_path, tiny_models):
    """The README's first command once installed no torch: a Load answered 202, then failed with
    ModuleNotFoundError and made the user's degraded model incompatible."""
    import html

    home = tmp_path / "home"
    server = serve_installed(venv, home, outside)
    api = f"{server.url}/api/models/tiny/llama"
    try:
        body = {"model_name": "tiny/llama", "cache_location": "custom", "cache_path": str(tiny_models["llama"]),
                "compatibility_status": "degraded"}
        assert requests.post(f"{server.url}/api/models", json=body, timeout=10).status_code == 201
        for action in ("load", "benchmark"):
            refused = requests.post(f"{api}/{action}", json={}, timeout=10)
            assert refused.status_code == 409, refused.text
            _assert_says_what_to_install(refused.json()["message"])
        # The page's Load button (an HTMX post answered with the card) and the modal's Measure button.
        for action in ("load", "benchmark"):
            page = requests.post(f"{server.url}/models/tiny/llama/{action}", headers={"HX-Request": "true"}, timeout=10)
            assert page.status_code == 200, page.text
            error = re.search(r'<p class="load-error" role="alert">(.*?)</p>', page.text, re.DOTALL)
            assert error, page.text
            _assert_says_what_to_install(html.unescape(error.group(1)))
        # Nothing happened to the model: its status, no attempt, no measurement.
        assert requests.get(api, timeout=10).json()["compatibility_status"] == "degraded"
        attempts = requests.get(f"{api}/attempts", timeout=10).json()
        assert attempts == {"load_state": {"state": "idle"}, "items": []}, attempts
        assert requests.get(f"{api}/measurements", timeout=10).json() == []
    except Exception as error:
        raise AssertionError(f"{error}\n--- server log ---\n{server.log}") from error
    finally:
        server.stop()
    assert "Traceback" not in server.log, server.log

    bench = subprocess.run([venv / "bin" / "modelhub", "--data-dir", home, "bench", "tiny/llama"], cwd=outside,
                           env=_clean_environment(HF_HUB_OFFLINE=1), capture_output=True, text=True, timeout=120)
    assert bench.returncode == 1, bench.stdout + bench.stderr
    _assert_says_what_to_install(bench.stderr)
    assert "Traceback" not in bench.stderr
    assert not (home / "workers").exists(), "no worker was started"
