"""The objects plugins receive and return while a model loads. No torch here: plain data."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelInfo:
    """The model being loaded, as plugins see it."""

    name: str  # the registry name
    hf_path: str
    location: str  # what from_pretrained is given: a local directory, or a hub id
    config: dict = field(default_factory=dict)  # config.json, when the files are local
    files: list[str] = field(default_factory=list)  # file names in the local directory

    @property
    def model_type(self) -> str | None:
        return self.config.get("model_type")

    @property
    def quantization_method(self) -> str | None:
        return (self.config.get("quantization_config") or {}).get("quant_method")


@dataclass
class LoadedModel:
    """What ``load_model`` returns. ``loading_info``: what transformers reported about the checkpoint's
    weights (``from_pretrained(..., output_loading_info=True)``: missing, unexpected and mismatched keys);
    the worker fails a load whose weights the model needs are missing or mismatched. None: not judged."""

    model: Any
    tokenizer: Any
    loading_info: dict | None = None


@dataclass
class Explanation:
    """What ``explain_failure`` returns: a readable cause, and a load_config to try if one is known.

    ``suggestion`` holds the keys to change in the user's load_config (``None`` as a value removes a key).
    """

    cause: str
    suggestion: dict | None = None


class LoadRefused(Exception):
    """Raised by a plugin to stop a load with a message the user can act on (e.g. a missing package)."""

    def __init__(self, message: str, suggestion: dict | None = None):
        super().__init__(message)
        self.suggestion = suggestion
