"""Whether the Python running modelhub can load models at all: torch and transformers installed.

Looked up with ``importlib.util.find_spec`` so that the web process never imports them (a worker
process does); import caches are invalidated first, so a ``pip install`` done while the server runs
is noticed by the next load without a restart (each load starts a new worker process).
"""

import importlib
import importlib.util
import sys

from modelhub.exceptions import MLStackMissing

REQUIRED = ("torch", "transformers")

INSTALL_HINT = (
    'Install them with: pip install "modelhub[ml]" (from a clone of the repository: pip install ".[ml]"), '
    "which brings the CPU build of torch 2.13.0. On a GPU machine, install your own torch 2.13.0 build "
    '(CUDA or ROCm) first, then: pip install "modelhub[ml-own-torch]" (from a clone: pip install ".[ml-own-torch]"). '
    "No restart is needed: the next load uses them."
)


def missing() -> list[str]:
    """The required packages this interpreter cannot import (without importing any of them)."""
    importlib.invalidate_caches()
    return [name for name in REQUIRED if _find(name) is None]


def _find(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a broken or half-removed install counts as missing
        return None


def require() -> None:
    """Raise MLStackMissing, saying what to install, unless torch and transformers can be imported."""
    absent = missing()
    if absent:
        raise MLStackMissing(
            f"Loading and measuring models need the ML libraries: {' and '.join(absent)} "
            f"{'is' if len(absent) == 1 else 'are'} not installed in the Python that runs modelhub "
            f"({sys.executable}). {INSTALL_HINT}"
        )
