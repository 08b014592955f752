"""Every error modelhub's services raise for a surface to answer, below everything else.

Each class carries its HTTP status (and any headers the answer needs), so the handlers above — JSON
under ``/api/``, an HTML page or fragment on the pages, an error line in the CLI — import this module
only, never the services that raise. The message (``str(error)``) is written for the person who has
to act on it: what happened and how to get past it.

Errors that never leave their own layer stay there: the worker side's ``LoadRefused`` is part of the
plugin interface (``modelhub.loading.types``), and parse errors that a validator turns into per-field
messages stay beside the validator.
"""


class ModelhubError(Exception):
    """Base class: ``status`` is the HTTP status of the answer; ``headers()`` any headers it must carry."""

    status = 500

    def headers(self) -> dict[str, str]:
        return {}


# The registry ---------------------------------------------------------------------------------------


class ModelNotFound(ModelhubError, LookupError):
    status = 404

    def __init__(self, name: str):
        super().__init__(f"No model named {name!r} in the registry.")
        self.name = name


class DuplicateModel(ModelhubError, ValueError):
    status = 409

    def __init__(self, name: str):
        super().__init__(f"A model named {name!r} is already registered.")
        self.name = name


class PreconditionFailed(ModelhubError):
    """The client's If-Match no longer names the stored version: someone else changed the model."""

    status = 412

    def __init__(self, row):
        super().__init__(
            f"Model {row.model_name!r} was changed since you read it (it is now at version {row.version}). "
            "Reload it, re-apply your change and send the new ETag in If-Match."
        )
        self.current_etag = row.etag

    def headers(self) -> dict[str, str]:
        return {"ETag": f'"{self.current_etag}"'}  # the version to retry against


class ConfigVersionNotFound(ModelhubError, LookupError):
    """No version with that number in the model's load_config history."""

    status = 404

    def __init__(self, name: str, number):
        super().__init__(f"Model {name!r} has no load_config version {number!r}: GET /api/models/{name}/configs "
                         "lists its versions.")


class NothingToRestore(ModelhubError):
    """Restoring a version whose load_config is the one in force: nothing would change."""

    status = 409

    def __init__(self, name: str, number: int):
        super().__init__(f"Version {number} is the load_config of {name!r} in force already: nothing to restore.")


class RestoreRefused(ModelhubError):
    """An old load_config that a PATCH would refuse today (a key of a plugin no longer installed)."""

    status = 422

    def __init__(self, name: str, number: int, why: str):
        super().__init__(f"Version {number} of the load_config of {name!r} cannot be saved again: {why}")


class WriteContention(ModelhubError):
    """Too many concurrent writers on one model for an unguarded write to get through."""

    status = 503

    def headers(self) -> dict[str, str]:
        return {"Retry-After": RETRY_AFTER_SECONDS}


# The same advice for a busy database (an OperationalError, raised by SQLAlchemy, not by modelhub).
RETRY_AFTER_SECONDS = "1"


# Loading and measuring: why a load, a measurement or an unload cannot start now --------------------


class LoadConflict(ModelhubError):
    """A load that cannot start now (already loading, or incompatible without force)."""

    status = 409


class MLStackMissing(LoadConflict):
    """The Python running modelhub lacks torch or transformers: a set-up problem of this server, not the
    model's, so it is refused before anything is recorded (the model's status stays as it was)."""


class NotLoaded(ModelhubError):
    """Unload of a model that is neither loaded nor loading."""

    status = 409


class UnknownCopy(ModelhubError, LookupError):
    """A load, a measurement, a preflight or the primary-copy choice named a copy the model does not have:
    409, as for a copy gone missing. Not 404: the address (the model) exists, and a client reading 404 would
    conclude the model is gone; not 422: the id is well-formed, it just names none of this model's copies
    now. ``messages`` are per field (the API answers them as ``errors.json.copy_id``, or
    ``errors.query.copy_id``) and list the copies it has."""

    status = 409

    def __init__(self, model_name: str, copy_id, copy_ids: list[int]):
        ids = ", ".join(str(known) for known in copy_ids) or "none (it has no copy on record)"
        message = f"{model_name!r} has no copy {copy_id!r}; its copies (GET /api/models/{model_name}/copies): {ids}."
        super().__init__(message)
        self.messages = {"copy_id": [message]}


class CopyMissing(LoadConflict):
    """The copy asked for was not found by the latest scan: its files are gone (or their disk is not
    mounted), so there is nothing to load."""


# Environments ---------------------------------------------------------------------------------------


class EnvironmentNotFound(ModelhubError, LookupError):
    status = 404

    def __init__(self, environment_id):
        super().__init__(f"No environment with id {environment_id!r} (GET /api/environments lists them).")


# Discovery ------------------------------------------------------------------------------------------


class ScanInProgress(ModelhubError):
    """A scan is already running on this host."""

    status = 409


# Hosts sharing a registry: loads asked of another host, and this host's Retest ---------------------


class UnknownHost(ModelhubError, ValueError):
    """A load asked of a host that never ran modelhub on this registry; ``messages`` are per field."""

    status = 400

    def __init__(self, host: str, known: list[str]):
        names = ", ".join(repr(name) for name in known) or "none yet"
        message = (f"No host named {host!r} has used this registry; known hosts: {names}. A host becomes known "
                   "once its modelhub has started with this database.")
        super().__init__(message)
        self.messages = {"host": [message]}


class HostJobNotFound(ModelhubError, LookupError):
    status = 404

    def __init__(self, job_id: int):
        super().__init__(f"No host job with id {job_id}.")


class HostJobConflict(ModelhubError):
    """The same load already queued for that host, or a job no longer queued (cannot be cancelled)."""

    status = 409


class RetestConflict(ModelhubError):
    """A retest already runs on this host (start), or none runs (stop)."""

    status = 409


class AutoconfigureConflict(ModelhubError):
    """An auto-configure run already runs for the model (start), none runs (stop), or its result cannot
    be applied (none found, or applied already)."""

    status = 409


class AutoconfigureNotFound(ModelhubError, LookupError):
    status = 404


# Export and import -----------------------------------------------------------------------------------


class NoProof(ModelhubError, LookupError):
    """The model never loaded successfully: there is no working load_config to report."""

    status = 409

    def __init__(self, name: str):
        super().__init__(f"{name!r} has never loaded successfully here, so there is no working load_config to "
                         "report. Load it (Load button, or POST /api/models/{name}/load) and try again.")


class InvalidDocument(ModelhubError, ValueError):
    """A file that cannot be imported; ``messages`` are marshmallow-style, per field."""

    status = 422

    def __init__(self, messages):
        super().__init__("The file cannot be imported.")
        self.messages = messages


class MalformedDocument(InvalidDocument):
    """Not JSON at all (or not UTF-8), where a file of the wrong shape is a 422."""

    status = 400


class DocumentTooLarge(InvalidDocument):
    """Over the import limit."""

    status = 413


class PlanChanged(ModelhubError):
    """What an import would do now differs from the plan the user reviewed."""

    status = 409

    def __init__(self, plan):
        super().__init__("The registry (or the file) changed since the preview: nothing was imported. "
                         "Review the new plan and apply it again.")
        self.plan = plan


# The security layer ----------------------------------------------------------------------------------


class Refusal(ModelhubError):
    """A request turned away before its view (wrong host, cross-site, no token, too large…): its status
    is the instance's, with a message that says how to get in."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self._headers = status, headers or {}

    def headers(self) -> dict[str, str]:
        return dict(self._headers)
