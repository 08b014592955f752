"""Refuses the two ways loading a model can run code that came with it, unless the operator allows them.

``trust_remote_code`` makes transformers import Python files shipped in the model repository, so it is
refused when the config is saved, and again when the model loads, unless the server was started with
``--allow-remote-code`` (``MODELHUB_ALLOW_REMOTE_CODE=1``). Pickle ``.bin`` weights can carry code too
(transformers loads them with torch's restricted ``weights_only`` unpickler, which has had bypasses), so
loads are limited to safetensors (``use_safetensors=True``) unless the model's load config says
``"allow_pickle_weights": true``.
"""

import os
import re

from marshmallow import ValidationError

from modelhub import hookimpl
from modelhub.loading.types import Explanation, LoadRefused
from modelhub.fields import StrictBoolean

REMOTE_CODE_REFUSED = ("trust_remote_code runs code shipped with the model; start the server with "
                       "--allow-remote-code (MODELHUB_ALLOW_REMOTE_CODE=1) to allow it")
# Weight files transformers reads with torch.load: pytorch_model.bin and its shards.
PICKLE_WEIGHTS = re.compile(r"pytorch_model(-\d+-of-\d+)?\.bin")


def remote_code_allowed() -> bool:
    return os.environ.get("MODELHUB_ALLOW_REMOTE_CODE") == "1"


def _check_remote_code(value):
    # Read at validation time, not import time: the flag belongs to the running server.
    if value and not remote_code_allowed():
        raise ValidationError(REMOTE_CODE_REFUSED)


@hookimpl
def load_config_fields():
    return {
        "trust_remote_code": StrictBoolean(validate=_check_remote_code,
                                           metadata={"description": "Run Python code shipped with the model."}),
        "allow_pickle_weights": StrictBoolean(metadata={"description": "Allow pickle .bin weights."}),
    }


@hookimpl
def adjust_load_kwargs(model, environment, kwargs):
    notes = []
    if kwargs.get("trust_remote_code") and not environment.get("modelhub", {}).get("allow_remote_code"):
        raise LoadRefused(REMOTE_CODE_REFUSED + ".", kind="refused")
    if kwargs.get("trust_remote_code"):
        notes.append("trust_remote_code allowed by the server (--allow-remote-code): code shipped with the model runs.")
    allow_pickle = kwargs.pop("allow_pickle_weights", False)  # ours, not a from_pretrained argument
    if allow_pickle:
        notes.append("allow_pickle_weights: pickle .bin weights may be loaded.")
        return notes
    pickles = [name for name in model.files if PICKLE_WEIGHTS.fullmatch(name)]
    if pickles and not any(name.endswith(".safetensors") for name in model.files):
        raise LoadRefused(f"{model.name} ships only pickle .bin weights ({', '.join(pickles)}), which can run code "
                          "when loaded; set \"allow_pickle_weights\": true in its load config to load them anyway.",
                          suggestion={"allow_pickle_weights": True}, kind="refused")
    kwargs["use_safetensors"] = True
    notes.append("use_safetensors=True: only safetensors weights are loaded (pickle weights can run code).")
    return notes


@hookimpl
def explain_failure(model, error, environment):
    message = str(error)
    if "no file named model.safetensors" in message:
        # Remote models (no file list up front) reach here instead of the refusal above.
        if model is not None and model.files and not any(PICKLE_WEIGHTS.fullmatch(name) for name in model.files):
            return Explanation(f"{model.location} has no weights file (neither model.safetensors nor "
                               "pytorch_model.bin): the download is incomplete.", kind="files")
        return Explanation("The model has no safetensors weights, only pickle .bin files, which can run code when "
                           "loaded; modelhub loads safetensors only unless allow_pickle_weights is set.",
                           {"allow_pickle_weights": True}, kind="refused")
    if "trust_remote_code" in message:
        allowed = environment.get("modelhub", {}).get("allow_remote_code")
        return Explanation("The model needs code shipped in its repository (trust_remote_code). "
                           + ("Set \"trust_remote_code\": true in its load config if you trust it."
                              if allowed else REMOTE_CODE_REFUSED + "."),
                           {"trust_remote_code": True} if allowed else None, kind="refused")
    return None
