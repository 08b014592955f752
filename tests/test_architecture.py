"""docs/architecture.md stays true: every file and folder it names exists, every feature has its room on
every floor it claims, and every module of the package is named on the page or sits in a named folder."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "architecture.md").read_text()
FEATURES = ("models", "loading", "measuring", "discovery", "compare", "card_scores", "exchange", "sign_in")
NAMED_PATHS = sorted(set(re.findall(r"(?<![\w/<])((?:modelhub|plugins|templates|tests|bench|migrations|static|docs)"
                                    r"/[\w./]*[\w/])", PAGE)))


def test_the_page_names_paths():
    assert len(NAMED_PATHS) > 40


def test_every_named_path_exists():
    missing = [path for path in NAMED_PATHS if "<" not in path and not (ROOT / path).exists()]
    assert missing == []


def test_every_feature_has_an_html_view():
    for feature in FEATURES:
        assert (ROOT / "modelhub" / "views" / f"{feature}.py").exists(), feature
        assert f"**{feature}**" in PAGE


def test_every_top_level_module_is_on_the_page():
    """A new module is either in a feature's package or written into the page's floors."""
    top_level = {path.name for path in (ROOT / "modelhub").glob("*.py")} - {"__init__.py"}
    unnamed = sorted(name for name in top_level if f"modelhub/{name}" not in PAGE and name[:-3] not in PAGE)
    assert unnamed == []
