"""The hooks a modelhub plugin can implement.

A plugin is a module (or object) registered through the ``modelhub`` entry-point group; it implements
any of these functions, marked with ``@hookimpl`` (``from modelhub import hookimpl``). Built-in plugins
in ``plugins/`` are registered the same way. docs/plugins.md explains each hook with examples.

Where hooks run: ``load_config_fields``, ``load_attempt_finished``, ``plan_load`` and ``propose_configs``
run in the web server process, which never imports torch or transformers, so import those inside the
other hooks only. The other four run in the worker process that loads the model, where torch is available.
"""

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("modelhub")
hookimpl = pluggy.HookimplMarker("modelhub")


@hookspec
def load_config_fields() -> dict[str, Any]:
    """Declare the load_config keys this plugin understands, as ``{key: marshmallow field}``.

    Called when a plugin is registered (in the web server at start, in the CLI, in each load worker).
    The load_config schema that ``PATCH .../config``
    validates against is composed of every plugin's fields: a key that no plugin declares is refused
    with a message listing the known keys. Two plugins declaring the same key is an error reported for
    the second one. Return a dict (empty if the plugin owns no key).
    """


@hookspec
def describe_environment(environment: dict) -> dict | None:
    """Add facts about this machine to ``environment`` before a load.

    Called in the worker process, once per load, in pluggy's order; the built-in ``default_loader``
    runs first (``tryfirst``), so ``environment`` already holds its facts (``torch``, ``transformers``,
    ``cuda``, ``rocm``, ``gpus``, ``wsl``, ``packages``) and those of plugins called before yours.
    Return a dict of facts to merge in (JSON-serialisable), or None.
    """


@hookspec
def adjust_load_kwargs(model, load_config: dict, environment: dict, kwargs: dict) -> list[str] | None:
    """Turn the user's load_config into the final ``from_pretrained`` keyword arguments.

    Called in the worker process before loading, once per plugin (``tryfirst`` plugins first), with
    ``kwargs`` starting as a copy of the validated load_config. Change ``kwargs`` in place: rename a key,
    drop one, add one, or replace a value with an object (e.g. a ``BitsAndBytesConfig``). ``model`` is a
    :class:`modelhub.loading.types.ModelInfo` (name, where its files are, its config.json). Return log
    lines saying what you did and why, or None. modelhub records which plugin changed which key. To stop
    the load with a clear message (a missing package, a refused setting) raise
    :class:`modelhub.loading.types.LoadRefused`; any other exception is reported and the plugin's
    changes are discarded.
    """


@hookspec(firstresult=True)
def load_model(model, kwargs: dict, environment: dict):
    """Load the model and its tokenizer. Stops at the first non-None result.

    Called in the worker process with the final kwargs. Return a
    :class:`modelhub.loading.types.LoadedModel`, or None to leave it to another plugin (the built-in
    one, registered ``trylast``, uses ``AutoModelForCausalLM`` and ``AutoTokenizer``). An exception is the
    load's failure, explained by ``explain_failure``.
    """


@hookspec(firstresult=True)
def explain_failure(model, error: BaseException, load_config: dict, kwargs: dict, environment: dict):
    """Explain why a load failed. Stops at the first non-None result.

    Called in the worker process when loading or the smoke test raised ``error``. Return a
    :class:`modelhub.loading.types.Explanation` (a readable cause and, when you know one, a suggested
    load_config to try), or None if you do not recognise the error.
    """


@hookspec
def load_attempt_finished(model_name: str, attempt: dict) -> None:
    """Hear the outcome of every load attempt, after it is recorded.

    Called in the web server process (no torch here) for successes, failures, timeouts, crashed
    workers and attempts interrupted by a server restart. ``attempt`` is the recorded attempt as the API
    returns it (``outcome``, ``error_type``, ``error_message``, ``final_kwargs``, ``environment`` ...).
    The return value is ignored; an exception is logged and does not affect other plugins.
    """


@hookspec
def plan_load(model, load_config: dict, plan, host: dict) -> list[str] | None:
    """Tell preflight what this plugin's load_config keys will do to a load, before anything loads.

    Called in the web server process (no torch) by ``modelhub/preflight`` for every preflight: the API's
    ``GET .../preflight``, the modal, the card's mark, and the prediction recorded with each run.
    ``model`` is a :class:`modelhub.loading.types.ModelInfo`; ``load_config`` the config being checked
    (maybe not saved yet); ``plan`` a :class:`modelhub.preflight.plan.LoadPlan` to change in place (the
    weights' bits, the devices and their budgets, disk offload, the packages the load will need);
    ``host`` this host's facts (memory, GPUs, installed packages). Return notes saying what you did,
    or None. Raise :class:`modelhub.loading.types.LoadRefused` when the config cannot load here at all
    (preflight answers "cannot load" with your message).
    """


@hookspec
def propose_configs(model, failure, load_config: dict, environment: dict) -> list | None:
    """Propose the next load_configs to try after a failed try of an auto-configure run.

    Called in the web server process (no torch) by ``modelhub/autoconfigure`` after each failure.
    ``failure`` is a :class:`modelhub.loading.types.Failure` (``kind`` is one of ``FAILURE_KINDS``:
    out of memory, attention, bf16 unsupported, ...); ``load_config`` the config that failed;
    ``environment`` this host's facts as its last worker described them. Return a list of
    :class:`modelhub.loading.types.Proposal` (changes to ``load_config``, why, the limitation), or None.
    The search merges every plugin's proposals by priority, drops configs already tried and those
    preflight says cannot fit, and never loops.
    """
