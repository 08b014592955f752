"""The objects plugins receive and return while a model loads. No torch here: plain data."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelInfo:
    """The model being loaded, as plugins see it."""

    name: str  # the registry name
    hf_path: str
    location: str  # what from_pretrained is given: a local directory (a GGUF file's folder), or a hub id
    config: dict = field(default_factory=dict)  # config.json, when the files are local
    files: list[str] = field(default_factory=list)  # file names in the local directory (a GGUF copy: its file)
    # A GGUF copy (its path is the file itself, modelhub/loading/model_files.py): what its header says —
    # file (the path), architecture (GGUF's name), model_type (transformers'), quantization ("Q4_K_M"),
    # tensor_types, parameter_count, context_length. None for a folder with config.json.
    gguf: dict | None = None

    @property
    def model_type(self) -> str | None:
        return self.config.get("model_type") or (self.gguf or {}).get("model_type")

    @property
    def quantization_method(self) -> str | None:
        return (self.config.get("quantization_config") or {}).get("quant_method")


@dataclass
class LoadedModel:
    """What ``load_model`` returns. ``loading_info``: what transformers reported about the checkpoint's
    weights (``from_pretrained(..., output_loading_info=True)``: missing, unexpected and mismatched keys);
    the worker fails a load whose weights the model needs are missing or mismatched. None: not judged.
    ``report``: facts only the loading plugin knows, merged into the attempt's ``load_report``."""

    model: Any
    tokenizer: Any
    loading_info: dict | None = None
    report: dict = field(default_factory=dict)  # what the plugin adds to the attempt's load_report (e.g. "gguf")


@dataclass
class Explanation:
    """What ``explain_failure`` returns: a readable cause, and a load_config to try if one is known.

    ``suggestion`` holds the keys to change in the user's load_config (``None`` as a value removes a key).
    """

    cause: str
    suggestion: dict | None = None
    kind: str | None = None  # one of FAILURE_KINDS when the plugin knows which kind of failure it is
    package: str | None = None  # with kind "missing_package": the package to install


# The kinds of failure auto-configure acts on (modelhub/autoconfigure). "other": not classified.
FAILURE_KINDS = ("out_of_memory", "wont_fit", "attention", "non_finite", "bf16_unsupported", "missing_package",
                 "refused", "crash", "timeout", "files", "other")


@dataclass(frozen=True)
class Trial:
    """A load that tries a config other than the saved one: a try of auto-configure run ``run_id``."""

    load_config: dict
    run_id: int
    limitation: str | None = None  # what this config gives up (4-bit, offload): a success is degraded


class LoadRefused(Exception):
    """Raised by a plugin to stop a load with a message the user can act on (e.g. a missing package)."""

    def __init__(self, message: str, suggestion: dict | None = None, kind: str = "refused",
                 package: str | None = None):
        super().__init__(message)
        self.suggestion = suggestion
        self.kind = kind  # FAILURE_KINDS: "refused" (a setting the user must allow), "missing_package", ...
        self.package = package


@dataclass
class Failure:
    """A failed try, as ``propose_configs`` sees it (web process): its kind (``FAILURE_KINDS``), the
    readable cause, the error, the package missing (kind ``missing_package``) and the explainer's
    suggested changes, if any."""

    kind: str
    cause: str
    error_type: str | None = None
    error_message: str | None = None
    package: str | None = None
    suggestion: dict | None = None


@dataclass
class Proposal:
    """A next config to try, from ``propose_configs``: the keys to change in the failed try's load_config
    (``None`` as a value removes a key), why, and what the user gives up if it is the one that loads
    (``limitation``: "weights in 4-bit", "parts offloaded to disk"; a result with one is ``degraded``).
    Lower ``priority`` is tried first."""

    changes: dict
    why: str
    limitation: str | None = None
    priority: int = 50
