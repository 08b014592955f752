"""Which copy of a model's files a load (or a measurement) reads: the one the request names by its id
(``GET /api/models/{name}/copies``), else the model's ``cache_path`` (its primary copy). The path chosen
is what the worker is sent as its ``cache_path`` and what the run records as ``copy_path``."""

from sqlalchemy import select

from modelhub.exceptions import CopyMissing, UnknownCopy
from modelhub.extensions import db
from modelhub.models import ModelCopy, ModelRegistry

LARGEST_ID = 2**31 - 1  # beyond what a database integer holds no copy can exist (PostgreSQL would refuse it)


def chosen_path(model: ModelRegistry, copy_id: int | None) -> str | None:
    """The path a run on ``model`` loads: copy ``copy_id``'s, or the model's cache_path when None.
    Raises UnknownCopy (422) for an id that is not one of the model's copies, CopyMissing (409) for a
    copy the latest scan did not find."""
    if copy_id is None:
        return model.cache_path
    copy = db.session.get(ModelCopy, copy_id) if 0 < copy_id <= LARGEST_ID else None
    if copy is None or copy.model_id != model.id:
        ids = list(db.session.scalars(select(ModelCopy.id).where(ModelCopy.model_id == model.id)
                                      .order_by(ModelCopy.id)))
        raise UnknownCopy(model.model_name, copy_id, ids)
    if copy.missing:
        raise CopyMissing(f"Copy {copy_id} of {model.model_name!r} ({copy.path}) is missing: the latest scan did not "
                          f"find it (deleted, moved, or its disk is not mounted). Load another copy, or scan again "
                          "once it is back.")
    return copy.path
