"""Which copy of a model's files a load (or a measurement) reads: the one the request names by its id
(``GET /api/models/{name}/copies``), else the model's ``cache_path`` (its primary copy). The path chosen
is what the worker is sent as its ``cache_path`` and what the run records as ``copy_path``."""

from modelhub import registry
from modelhub.models import ModelRegistry


def chosen_path(model: ModelRegistry, copy_id: int | None) -> str | None:
    """The path a run on ``model`` loads: copy ``copy_id``'s, or the model's cache_path when None.
    Raises UnknownCopy (409) for an id that is not one of the model's copies, CopyMissing (409) for a
    copy the latest scan did not find (registry.present_copy)."""
    if copy_id is None:
        return model.cache_path
    return registry.present_copy(model, copy_id).path
