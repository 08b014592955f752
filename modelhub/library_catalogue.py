"""The libraries a copy of a model can live in, written once.

A copy's ``library`` (model_copy.library, the API's ``Library`` enum) names the tool whose files hold
it; the pages show each by its ``name`` (the cards' badges, the modal's "Copies on disk", the scan's
list of roots). ``cache_location`` stays the registry's contract (primary / secondary / custom): a copy
in another tool's library is "secondary", and its library says which tool.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Library:
    id: str  # model_copy.library, the API's value
    name: str  # on the pages
    description: str  # the hover text: what kind of place it is


LIBRARIES = (
    Library("huggingface", "HF cache", "The Hugging Face hub cache: snapshots of hub repos"),
    Library("lmstudio", "LM Studio", "LM Studio's models folder: <publisher>/<repo>/*.gguf"),
    Library("ollama", "Ollama", "Ollama's model store: manifests naming blobs"),
    Library("text-generation-webui", "text-generation-webui", "text-generation-webui's models folder"),
    Library("folder", "Folder", "A folder of model folders (MODELHUB_SECONDARY_CACHE)"),
    Library("custom", "Custom", "A path registered by hand"),
)
BY_ID = {library.id: library for library in LIBRARIES}
LIBRARY_IDS = tuple(BY_ID)

# Copies recorded before libraries were (migration 0011) carry none: their location says which it is.
_OF_LOCATION = {"primary": "huggingface", "secondary": "folder", "custom": "custom"}


def library_id(library: str | None, location: str) -> str:
    """A copy's library: the one recorded, else the one its location implies."""
    return library if library in BY_ID else _OF_LOCATION.get(location, "folder")


def of_copy(copy) -> Library:
    """The library of a model_copy row (or anything with ``library`` and ``location``)."""
    return BY_ID[library_id(copy.library, copy.location)]
