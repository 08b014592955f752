"""GPTQ and AWQ checkpoints: check before loading that the packages transformers 5 needs for them are installed.

A GPTQ or AWQ checkpoint says so in its config.json (``quantization_config.quant_method``). transformers 5.24
loads both through gptqmodel, whose torch kernels also run on the CPU: GPTQ through ``optimum`` +
``gptqmodel`` (the older ``auto-gptq`` installs but no longer imports with transformers 5), AWQ through
``gptqmodel`` + ``accelerate`` (transformers 5 dropped its ``autoawq`` path). Without them transformers fails
inside the load, and for GPTQ without a GPU it even says "GPU is required", which sends users the wrong way.
This plugin refuses such a load up front, before any weight is read, with the install command, and explains
those errors when they happen anyway. It owns no keys: the checkpoint carries its own settings.
"""

import importlib.metadata
import importlib.util

from modelhub import hookimpl
from modelhub.loading.types import Explanation, LoadRefused

# What transformers 5.24's quantizers check first (quantizer_gptq.py, quantizer_awq.py: validate_environment).
REQUIRED = {"gptq": ("optimum", "gptqmodel"), "awq": ("gptqmodel", "accelerate")}
NAMES = {"gptq": "a GPTQ", "awq": "an AWQ"}  # with their articles: "an AWQ checkpoint"
EXTRA = ("optimum", "gptqmodel")  # what the `gptq` extra installs
INSTALL = "pip install 'modelhub[gptq]' (optimum==2.3.0 gptqmodel==7.6.0; gptqmodel builds from source)"
NOT_TWICE = {"quantization_config": None, "load_in_8bit": None, "load_in_4bit": None}


def _method(model) -> str | None:
    method = model.quantization_method if model is not None else None
    return method if method in REQUIRED else None


@hookimpl
def adjust_load_kwargs(model, kwargs):
    method = _method(model)
    if method is None:
        return None
    a_name, name, required = NAMES[method], method.upper(), REQUIRED[method]
    missing = [package for package in required if importlib.util.find_spec(package) is None]
    if missing:
        stale = ""
        if method == "gptq" and _installed("auto_gptq"):
            stale = " (auto-gptq is installed, but it does not work with transformers 5)"
        raise LoadRefused(f"{model.name} is {a_name} checkpoint; loading it needs {' and '.join(required)}, and "
                          f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed{stale}. "
                          f"Install them: {_install(missing)}." + _stale_hint(method),
                          kind="missing_package", package=missing[0])
    if isinstance(kwargs.get("quantization_config"), dict) and kwargs["quantization_config"]:
        # The checkpoint is already quantized; bitsandbytes cannot quantize it a second time.
        raise LoadRefused(f"{model.name} is already {name}-quantized; remove quantization_config (and load_in_8bit/"
                          "load_in_4bit) from its load config.",
                          suggestion=NOT_TWICE, kind="other")  # a conflict: auto-configure may try the suggestion
    bits = (model.config.get("quantization_config") or {}).get("bits")
    through = " and ".join(f"{package} {_installed(package)}" for package in required)
    return [f"{name} checkpoint ({bits}-bit): loaded through {through}."]


def _install(missing) -> str:
    commands = [INSTALL] if set(missing) & set(EXTRA) else []
    return "; ".join(commands + (["pip install accelerate==1.15.0"] if "accelerate" in missing else []))


def _stale_hint(method) -> str:
    if method == "gptq":
        return " auto-gptq does not work with transformers 5."
    return " autoawq is not needed: transformers 5 loads AWQ through gptqmodel."


def _installed(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@hookimpl
def explain_failure(model, error):
    message = str(error)
    method = _method(model)
    mentions = [name for name in ("auto_gptq", "gptqmodel", "optimum", "accelerate") if name in message]
    # "optimum" alone may be about another optimum feature; it is ours only for a GPTQ/AWQ checkpoint. Without
    # gptqmodel (its CPU path) transformers says "GPU is required" for GPTQ, which is ours too.
    ours = ("GPTQ" in message or "gptq" in message or "AWQ" in message
            or (method is not None and (mentions or "GPU is required" in message)))
    if not ours:
        return None
    name = method.upper() if method else ("AWQ" if "AWQ" in message and "GPTQ" not in message else "GPTQ")
    needs = "gptqmodel and accelerate (not autoawq)" if name == "AWQ" else "optimum and gptqmodel (not auto-gptq)"
    package = "accelerate" if mentions == ["accelerate"] else "gptqmodel"
    return Explanation(f"Loading this {name} checkpoint failed in its packages ({', '.join(mentions) or 'gptqmodel'}): "
                       f"transformers 5 needs {needs}. {_install([package])}.",
                       kind="missing_package", package=package)


@hookimpl
def plan_load(model, load_config, plan):
    """Preflight: a GPTQ or AWQ checkpoint stays packed at its bits (the weights as stored) and needs its
    packages; bitsandbytes cannot quantize it a second time."""
    method = _method(model)
    if method is None:
        return None
    a_name, name = NAMES[method], method.upper()
    bits = (model.config.get("quantization_config") or {}).get("bits")
    plan.quantization, plan.quantize_on_load = method, False
    plan.weight_bits = bits if isinstance(bits, (int, float)) else plan.weight_bits
    for package in REQUIRED[method]:
        extra = "; pip install 'modelhub[gptq]' installs optimum and gptqmodel" if package in EXTRA else ""
        plan.need(package, f"{a_name[0].upper()}{a_name[1:]} checkpoint (transformers 5 loads it through "
                           f"{' and '.join(REQUIRED[method])}{extra})")
    if isinstance(load_config.get("quantization_config"), dict) and load_config["quantization_config"]:
        raise LoadRefused(f"{model.name} is already {name}-quantized; remove quantization_config from its load config.",
                          suggestion=NOT_TWICE)
    return [f"{name} checkpoint ({bits}-bit): packed weights as stored"]
