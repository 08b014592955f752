"""The HTML side's layout: one view module per feature, named as its JSON twin; views and templates
receive data from the services below them and never query or fetch it themselves."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ROOT / "modelhub" / "views"
API = ROOT / "modelhub" / "api"
API_PLUMBING = {"__init__", "http", "openapi", "health"}  # the API's own machinery, not a feature
TEMPLATES = ROOT / "templates"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_every_api_feature_has_its_html_twin():
    features = {p.stem for p in API.glob("*.py")} - API_PLUMBING
    assert features, "no API modules found"
    assert sorted(f for f in features if not (VIEWS / f"{f}.py").exists()) == []


def test_views_hold_no_query():
    for path in VIEWS.glob("*.py"):
        imports = _imported_modules(path)
        assert not {m for m in imports if m.startswith("sqlalchemy")}, f"{path.name} builds a query"
        assert "modelhub.extensions" not in imports, f"{path.name} reaches the database session"


def test_templates_are_in_a_folder_per_area_and_fetch_nothing():
    # At the top: the layout and what more than one area shares; every other template in its area's folder.
    top = sorted(p.name for p in TEMPLATES.glob("*.html"))
    assert top == ["_empty_registry.html", "_filters.html", "_refused.html", "bad_request.html", "base.html",
                   "refused.html"], top
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for fetch in (r"\bload_state\(", r"\bscan_status\(", r"\breport_proof\(", r"\bplugins\(", r"[\s({]g\.\w"):
            assert not re.search(fetch, text), f"{path.relative_to(TEMPLATES)} fetches its own data ({fetch})"


def test_context_processors_give_values_not_fetchers(app):
    with app.test_request_context("/"):
        context = {}
        app.update_template_context(context)
    provided = set(context) - {"config", "request", "session", "g"}
    assert provided == {"display", "database", "auth"}
    assert not any(callable(context[name]) for name in provided)
