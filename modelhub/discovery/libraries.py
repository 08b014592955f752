"""Where a scan looks: the Hugging Face hub cache (primary), the roots of ``MODELHUB_SECONDARY_CACHE``, and
the libraries of the other tools people keep models with: LM Studio, Ollama and text-generation-webui.

Each tool's place comes from an environment variable when set (an ``os.pathsep`` list; a place named
there that does not exist is a problem, as a secondary root is), else from the tool's default (skipped
without a word when it does not exist: that tool is just not installed here). ``MODELHUB_LIBRARIES``
chooses the tools to look in (a comma list; ``none`` for none).

modelhub only reads these places: it never writes, moves, renames or deletes anything in them.
"""

import os
from pathlib import Path

from modelhub.discovery.types import Location

SECONDARY_ENV = "MODELHUB_SECONDARY_CACHE"
LIBRARIES_ENV = "MODELHUB_LIBRARIES"
LMSTUDIO, OLLAMA, TEXTGEN = "lmstudio", "ollama", "text-generation-webui"
TOOLS = (LMSTUDIO, OLLAMA, TEXTGEN)
# The variables that configure each tool's places, first match wins (Ollama's own OLLAMA_MODELS too).
ENV = {LMSTUDIO: ("MODELHUB_LMSTUDIO_MODELS",), OLLAMA: ("MODELHUB_OLLAMA_MODELS", "OLLAMA_MODELS"),
       TEXTGEN: ("MODELHUB_TEXTGEN_WEBUI",)}
DEFAULTS = {
    LMSTUDIO: ("~/.lmstudio/models", "~/.cache/lm-studio/models"),  # the current place, and LM Studio < 0.3's
    OLLAMA: ("~/.ollama/models",),
    TEXTGEN: ("~/text-generation-webui",),  # an install folder: its models are in user_data/models or models
}
TEXTGEN_MODELS = ("user_data/models", "models")  # newer releases moved models/ into user_data/


def primary_location() -> Location:
    """The hub cache as huggingface_hub resolves it: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``~/.cache/huggingface/hub``. Read from the environment now, like huggingface_hub.constants reads it
    once at import (its value would be stale for a process whose environment changed since)."""
    return Location("primary", Path(_hub_cache_from_environment()), library="huggingface")


def _hub_cache_from_environment() -> str:
    """huggingface_hub.constants' rule."""
    env = os.environ
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return os.path.expandvars(os.path.expanduser(cache))


def secondary_locations() -> list[Location]:
    """The roots listed in ``MODELHUB_SECONDARY_CACHE``, separated by ``os.pathsep`` (``~`` expanded).
    Roots that do not exist are kept: the scan reports them as problems."""
    return [Location("secondary", Path(path)) for path in _paths(os.environ.get(SECONDARY_ENV, ""))]


def chosen_tools() -> list[str]:
    """The tools named in ``MODELHUB_LIBRARIES`` (all three by default), in the order given; names
    that are no tool are ignored."""
    value = os.environ.get(LIBRARIES_ENV)
    if value is None or not value.strip():
        return list(TOOLS)
    names = [name.strip().lower() for name in value.split(",")]
    return [tool for tool in dict.fromkeys(names) if tool in TOOLS]


def library_locations() -> list[Location]:
    """The places of the chosen tools' libraries, each a secondary Location naming its tool."""
    locations = []
    for tool in chosen_tools():
        configured = next((os.environ[name] for name in ENV[tool] if os.environ.get(name, "").strip()), None)
        paths = _paths(configured) if configured is not None else [os.path.expanduser(p) for p in DEFAULTS[tool]]
        for path in paths:
            root = Path(textgen_models(path) if tool == TEXTGEN else path)
            locations.append(Location("secondary", root, library=tool, configured=configured is not None))
    return locations


def scan_locations() -> list[Location]:
    """Every place a scan looks, in the order it looks (a file reached from two places is reported at
    the first): the hub cache, the secondary roots, then the tools' libraries."""
    return [primary_location(), *secondary_locations(), *library_locations()]


def textgen_models(install: str) -> str:
    """text-generation-webui's models folder in the install folder ``install``: ``user_data/models``
    where it exists (newer releases), else ``models``."""
    for relative in TEXTGEN_MODELS:
        if os.path.isdir(os.path.join(install, relative)):
            return os.path.join(install, relative)
    return os.path.join(install, TEXTGEN_MODELS[-1])


def missing_root_message(location: Location) -> str:
    """Why a configured root that does not exist is reported: the variable that names it."""
    if location.kind == "primary":
        return "folder does not exist (nothing downloaded yet, or HF_HUB_CACHE / HF_HOME point elsewhere)"
    names = ENV.get(location.library, (SECONDARY_ENV,))
    return f"folder does not exist (listed in {' or '.join(names)})"


def _paths(value: str) -> list[str]:
    return [os.path.expanduser(part.strip()) for part in value.split(os.pathsep) if part.strip()]
