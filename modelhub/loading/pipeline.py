"""From the user's load_config to the final from_pretrained kwargs, through every plugin, recording
which plugin changed what. Runs in the worker process; plain Python (plugins import torch themselves)."""

import copy
import json
import logging

from modelhub.loading.types import LoadRefused, ModelInfo
from modelhub.plugin_manager import PluginHost

log = logging.getLogger(__name__)


def describe_environment(host: PluginHost, settings: dict) -> dict:
    """Facts about this machine from every plugin, plus modelhub's own settings for this load."""
    environment: dict = {"modelhub": dict(settings)}
    for name, function in host.implementations("describe_environment"):
        try:
            facts = function(environment=environment)
        except Exception as error:  # noqa: BLE001 - one plugin's failure must not stop the load
            log.warning("plugin %s could not describe the environment: %s", name, error)
            environment.setdefault("plugin_errors", {})[name] = f"{type(error).__name__}: {error}"
            continue
        environment.update(facts or {})
    return environment


def build_kwargs(host: PluginHost, model: ModelInfo, load_config: dict, environment: dict) -> tuple[dict, list[dict]]:
    """Run every ``adjust_load_kwargs``; return the final kwargs and what each plugin did.

    Each entry of the changes list names a plugin and the keys it set (with their new values, made
    JSON-safe), the keys it removed and its notes. A plugin raising LoadRefused stops the load; any
    other exception is recorded and that plugin's changes are undone.
    """
    kwargs = copy.deepcopy(load_config)
    changes = []
    for name, function in host.implementations("adjust_load_kwargs"):
        before = copy.deepcopy(kwargs)
        try:
            notes = function(model=model, load_config=load_config, environment=environment, kwargs=kwargs)
        except LoadRefused:
            raise
        except Exception as error:  # noqa: BLE001 - isolate the plugin, keep loading without it
            log.warning("plugin %s failed while adjusting kwargs (its changes are ignored): %s", name, error)
            kwargs.clear()
            kwargs.update(before)
            changes.append({"plugin": name, "error": f"{type(error).__name__}: {error}"})
            continue
        change = _diff(before, kwargs)
        for note in notes or []:
            log.info("[%s] %s", name, note)
        if change or notes:
            changes.append({"plugin": name, **change, "notes": list(notes or [])})
    return kwargs, changes


def _diff(before: dict, after: dict) -> dict:
    changed = {key: jsonable(value) for key, value in after.items() if key not in before or not _same(before[key], value)}
    removed = sorted(key for key in before if key not in after)
    return {k: v for k, v in (("set", changed), ("removed", removed)) if v}


def _same(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001 - objects whose == raises are simply "changed"
        return False


def jsonable(value):
    """A JSON-safe picture of a kwargs value (config objects become their dicts, dtypes their names)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return {"__class__": type(value).__name__, **jsonable(to_dict())}
        except Exception:  # noqa: BLE001 - fall back to the repr
            pass
    return str(value)


def as_json(value) -> str:
    return json.dumps(jsonable(value), sort_keys=True)
