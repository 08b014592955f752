"""8-bit and 4-bit loading with bitsandbytes, from a plain-JSON ``quantization_config``.

A load config is JSON, but transformers wants a ``BitsAndBytesConfig`` object with torch dtypes in it.
This plugin owns ``quantization_config`` (the bitsandbytes options only, checked when the config is
saved), builds the object in the worker, and refuses the load up front, naming the package to install,
when bitsandbytes or accelerate is missing. bitsandbytes 0.50.2 quantizes on CPU as well as GPU
(``Linear8bitLt`` / ``Linear4bit`` layers), so nothing here requires a GPU.
"""

import importlib.metadata
import importlib.util

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from modelhub import hookimpl
from modelhub.autoconfigure import rules
from modelhub.fields import StrictFloat
from modelhub.loading.types import Explanation, LoadRefused, Proposal
from modelhub.fields import StrictBoolean
from modelhub.plugins.legacy_keys import QUANTIZATION_KEYS

PIN = "bitsandbytes==0.50.2"  # the version setup.cfg's [ml] extra installs and the tests exercise


class BitsAndBytesOptions(Schema):
    """The keys of quantization_config: BitsAndBytesConfig's arguments, as JSON."""

    class Meta:
        unknown = RAISE

    load_in_8bit = StrictBoolean()
    load_in_4bit = StrictBoolean()
    bnb_4bit_quant_type = fields.String(validate=validate.OneOf(("nf4", "fp4")))
    bnb_4bit_compute_dtype = fields.String(validate=validate.OneOf(("float32", "float16", "bfloat16")))
    bnb_4bit_use_double_quant = StrictBoolean()
    llm_int8_threshold = StrictFloat(validate=validate.Range(min=0, min_inclusive=False))
    llm_int8_skip_modules = fields.List(fields.String(validate=validate.Length(min=1)))
    # Lets 8-bit models keep modules that accelerate offloads to CPU/disk in fp32 (see explain_failure).
    llm_int8_enable_fp32_cpu_offload = StrictBoolean()

    @validates_schema
    def _one_mode(self, data, **kwargs):
        if data.get("load_in_8bit") and data.get("load_in_4bit"):
            raise ValidationError("Choose one of load_in_8bit and load_in_4bit, not both.")


class QuantizationConfig(fields.Field):
    """A JSON object of bitsandbytes options; errors come out as flat "key: message" lines."""

    def _deserialize(self, value, attr, data, **kwargs):
        options = BitsAndBytesOptions()
        if not isinstance(value, dict):
            raise ValidationError('Must be an object such as {"load_in_8bit": true}.')
        unknown = sorted(set(value) - set(options.fields))
        if unknown:  # marshmallow's own message is a bare "Unknown field."; say which keys are understood
            raise ValidationError(f"Unknown key(s) {', '.join(unknown)}: quantization_config takes the "
                                  f"bitsandbytes options {', '.join(sorted(options.fields))}.")
        try:
            options.load(value)
        except ValidationError as error:
            raise ValidationError([f"{key}: {message}" if key != "_schema" else message
                                   for key, messages in error.messages.items() for message in messages]) from None
        return value


@hookimpl
def load_config_fields():
    return {"quantization_config": QuantizationConfig(
        metadata={"description": "bitsandbytes quantization: load_in_8bit or load_in_4bit, ..."})}


def is_bitsandbytes(config) -> bool:
    return isinstance(config, dict) and bool(config.get("load_in_8bit") or config.get("load_in_4bit"))


def saved_bits(model) -> int | None:
    """8 or 4 for a checkpoint bitsandbytes quantized and save_pretrained wrote (its config.json says
    quant_method "bitsandbytes"; transformers writes load_in_4bit and _load_in_4bit), else None."""
    config = (model.config.get("quantization_config") or {}) if model is not None else {}
    four, eight = (bool(config.get(key) or config.get(f"_{key}")) for key in ("load_in_4bit", "load_in_8bit"))
    if (config.get("quant_method") or ("bitsandbytes" if four or eight else None)) != "bitsandbytes":
        return None  # older configs have no quant_method
    return 4 if four else 8


def _missing_packages() -> list[tuple[str, str]]:
    return [(package, pin) for package, pin in (("bitsandbytes", PIN), ("accelerate", "accelerate==1.15.0"))
            if importlib.util.find_spec(package) is None]


@hookimpl
def adjust_load_kwargs(model, kwargs):
    bits, missing = saved_bits(model), _missing_packages()
    if bits and missing:
        # transformers would stop too, but only after building the model; say it before anything loads.
        package, pin = missing[0]
        raise LoadRefused(f"{model.name} is a bitsandbytes {bits}-bit checkpoint (saved quantized), which needs the "
                          f"{package} package to load; it is not installed in the worker's environment: pip install {pin}",
                          kind="missing_package", package=package)
    config = kwargs.get("quantization_config")
    if not isinstance(config, dict):  # absent, or an object another plugin built
        return None
    if not is_bitsandbytes(config):
        if config:
            raise LoadRefused(f"quantization_config has {', '.join(sorted(config))} but neither load_in_8bit nor "
                              "load_in_4bit is true, so it would quantize nothing.",
                              suggestion={"quantization_config": None})
        del kwargs["quantization_config"]
        return ["Empty quantization_config dropped."]
    if missing:
        package, pin = missing[0]
        raise LoadRefused(f"quantization_config asks for bitsandbytes quantization, which needs the {package} "
                          f"package; it is not installed in the worker's environment: pip install {pin}",
                          kind="missing_package", package=package)

    import torch
    from transformers import BitsAndBytesConfig

    options = dict(config)
    if "bnb_4bit_compute_dtype" in options:  # JSON holds the name; transformers wants the torch dtype
        options["bnb_4bit_compute_dtype"] = getattr(torch, options["bnb_4bit_compute_dtype"])
    kwargs["quantization_config"] = BitsAndBytesConfig(**options)
    mode = "8-bit (LLM.int8)" if config.get("load_in_8bit") else f"4-bit ({config.get('bnb_4bit_quant_type', 'fp4')})"
    return [f"quantization_config {config} turned into a BitsAndBytesConfig: {mode} with bitsandbytes "
            f"{importlib.metadata.version('bitsandbytes')}."]


@hookimpl
def explain_failure(error, load_config):
    message = str(error)
    if "Some modules are dispatched on the CPU or the disk" in message:
        legacy = _legacy_options(load_config)
        options = {**legacy, **(load_config.get("quantization_config") or {}), "llm_int8_enable_fp32_cpu_offload": True}
        return Explanation(
            "accelerate placed part of the model on the CPU or disk (device_map/max_memory left too little room "
            "elsewhere), and bitsandbytes 8-bit layers cannot be offloaded. Setting "
            "llm_int8_enable_fp32_cpu_offload keeps the offloaded modules unquantized in float32; giving the GPU "
            "more memory (max_memory) or using 4-bit also avoids it.",
            {"quantization_config": options, **{key: None for key in legacy}},
        )
    if "bitsandbytes" not in message.lower():
        return None
    if isinstance(error, ImportError) or "requires bitsandbytes" in message:
        return Explanation(f"The bitsandbytes package is missing or too old for this transformers: pip install {PIN}",
                           kind="missing_package", package="bitsandbytes")
    # A build without this device's backend is, for auto-configure, a missing package: no bitsandbytes here.
    return Explanation(
        "bitsandbytes failed: the installed build does not support this device (older releases are CUDA-only; "
        f"{PIN} also runs on CPU; ROCm needs a ROCm build of bitsandbytes). Install {PIN} or load without "
        "quantization_config.",
        {"quantization_config": None, **{key: None for key in _legacy_options(load_config)}},
        kind="missing_package", package="bitsandbytes",
    )


@hookimpl
def propose_configs(model, failure, load_config, environment):
    """Auto-configure's quantization steps (modelhub/autoconfigure/rules.py): out of memory -> 8-bit, then 4-bit
    (never back up to 8-bit); bitsandbytes or accelerate missing -> no quantization. The user's other
    bitsandbytes options and placement stay; the old top-level keys are folded into quantization_config."""
    current = _mode(load_config)
    proposals = []
    for step, priority in rules.steps_for(failure.kind, ("8bit", "4bit", "drop_quantization")):
        if step == "drop_quantization":
            if current and rules.package_name(failure.package) in ("bitsandbytes", "accelerate"):
                proposals.append(Proposal(
                    {"quantization_config": None, **{key: None for key in _legacy_options(load_config)}},
                    f"{failure.package} is not installed, and bitsandbytes quantization needs it ({failure.cause}); "
                    "load without quantization_config.", priority=priority))
        elif _can_quantize(model, environment) and MODES.index(step) > MODES.index(current):
            proposals.append(Proposal(_quantized(load_config, step, environment), *_STEP_TEXTS[step], priority=priority))
    return proposals


MODES = (None, "8bit", "4bit")
_STEP_TEXTS = {
    "8bit": ("Out of memory: 8-bit weights (bitsandbytes LLM.int8) need about half the memory of 16-bit ones.",
             "weights in 8-bit (bitsandbytes LLM.int8)"),
    "4bit": ("Out of memory: 4-bit weights (bitsandbytes nf4) need about a quarter of the memory of 16-bit ones.",
             "weights in 4-bit (bitsandbytes nf4)"),
}


def _mode(load_config):
    options = {**_legacy_options(load_config), **(load_config.get("quantization_config") or {})}
    return "4bit" if options.get("load_in_4bit") else "8bit" if options.get("load_in_8bit") else None


def _can_quantize(model, environment) -> bool:
    """Not a checkpoint quantized already (GPTQ, AWQ: bitsandbytes cannot quantize it again; a GGUF file: the
    gguf plugin refuses bitsandbytes on it), and the packages there, as far as the last worker saw."""
    already = model is not None and (model.quantization_method is not None or model.gguf is not None)
    return not already and rules.is_installed(environment, "bitsandbytes") and rules.is_installed(environment, "accelerate")


def _quantized(load_config, step, environment) -> dict:
    """The quantization_config for the step, keeping the user's other options (modules skipped, thresholds).
    With parts on the CPU or disk, bitsandbytes needs them kept in float32 (llm_int8_enable_fp32_cpu_offload);
    without a GPU it cannot run offloaded layers at all (generation fails: "Cannot access accelerator
    device", "Cannot copy out of meta tensor"), so there the whole quantized model stays in RAM."""
    legacy = _legacy_options(load_config)
    options = {**legacy, **(load_config.get("quantization_config") or {})}
    for key in ("load_in_8bit", "load_in_4bit"):
        options.pop(key, None)
    options.update({"load_in_8bit": True} if step == "8bit" else {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"})
    if step == "8bit":
        options = {key: value for key, value in options.items() if not key.startswith("bnb_4bit_")}
    changes = {key: None for key in legacy}
    spread = load_config.get("max_memory") or load_config.get("device_map") in ("auto", "balanced", "balanced_low_0",
                                                                                 "sequential")
    if spread and environment.get("gpus") == []:
        changes.update({"device_map": "cpu", "max_memory": None})
    elif spread:
        options["llm_int8_enable_fp32_cpu_offload"] = True
    return {"quantization_config": options, **changes}


def _legacy_options(load_config):
    """Old-style top-level bitsandbytes keys, so a suggestion built from them keeps the user's choices."""
    return {key: load_config[key] for key in QUANTIZATION_KEYS if key in load_config}


@hookimpl
def plan_load(model, load_config, plan):
    """Preflight: the Linear layers' weights in 8 or 4 bits (embeddings and the head stay unquantized,
    as transformers keeps them), and the packages that needs. The old top-level keys count too
    (legacy_keys moves them into quantization_config in the worker). A checkpoint saved quantized needs
    the same packages; its weights count as stored (preflight's initial plan)."""
    bits = saved_bits(model)
    if bits:
        plan.weight_bits = bits
        for package in ("bitsandbytes", "accelerate"):
            plan.need(package, f"A bitsandbytes {bits}-bit checkpoint (saved quantized)")
        return [f"bitsandbytes {bits}-bit checkpoint: quantized weights as stored"]
    config = load_config.get("quantization_config")
    options = {**_legacy_options(load_config), **(config if isinstance(config, dict) else {})}
    if not is_bitsandbytes(options) or (plan.quantization and not plan.quantize_on_load):
        return None  # nothing to quantize, or a pre-quantized checkpoint (its own plugin refuses a second pass)
    eight = bool(options.get("load_in_8bit"))
    plan.quantization, plan.weight_bits, plan.quantize_on_load = ("bnb_8bit", 8, True) if eight else ("bnb_4bit", 4, True)
    plan.keep_unquantized = ["lm_head", *(options.get("llm_int8_skip_modules") or [])]
    if not eight:
        plan.quantization_overhead = {"double_quant": bool(options.get("bnb_4bit_use_double_quant")),
                                      "compute_dtype": options.get("bnb_4bit_compute_dtype"), "blocksize": 64}
    without = {"quantization_config": None, **{key: None for key in _legacy_options(load_config)}}
    plan.need("bitsandbytes", "bitsandbytes quantization (quantization_config)", instead=without)
    plan.need("accelerate", "bitsandbytes quantization (quantization_config)", instead=without)
    mode = "8-bit (LLM.int8)" if eight else f"4-bit ({options.get('bnb_4bit_quant_type', 'fp4')})"
    return [f"Linear weights quantized to {mode} while loading"]
