"""Where modelhub's non-Python resources (templates, static files, migrations) live.

In the source tree they sit beside the package (``templates/``, ``static/``, ``migrations/`` at the
repository root, the project's agreed layout); an installed wheel carries them inside the package
(``modelhub/templates`` ...) because setup.cfg maps them there. Both layouts must work, so every
lookup goes through :func:`resource_dir`.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the directory holding the resource folder ``name`` for this install."""
    installed = PACKAGE_DIR / name
    if installed.is_dir():
        return installed
    source_tree = PACKAGE_DIR.parent / name
    if source_tree.is_dir():
        return source_tree
    raise RuntimeError(f"modelhub is installed without its {name!r} folder (looked in {installed} and {source_tree})")
