"""Why a load, a measurement or an unload cannot start now: each an HTTP 409 for the API, a message on
the card (or the modal) for the pages, an error line for the CLI."""


class LoadConflict(RuntimeError):
    """A load that cannot start now (already loading, or incompatible without force): HTTP 409."""


class NotLoaded(RuntimeError):
    """Unload of a model that is neither loaded nor loading: HTTP 409."""


class MLStackMissing(LoadConflict):
    """The Python running modelhub lacks torch or transformers: a set-up problem of this server, not the
    model's, so it is refused before anything is recorded (the model's status stays as it was)."""
