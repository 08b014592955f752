"""GPTQ checkpoints: check before loading that the packages transformers 5 needs for them are installed.

A GPTQ checkpoint says so in its config.json (``quantization_config.quant_method == "gptq"``), and
transformers 5 loads it only through ``optimum`` + ``gptqmodel``; the older ``auto-gptq`` installs but no
longer imports with transformers 5. Without them transformers fails deep inside the load, and without a
GPU it even says "GPU is required", which sends users the wrong way. This plugin refuses such a load up
front with the install command, and explains those errors when they happen anyway. It owns no keys: the
checkpoint carries its own GPTQ settings.
"""

import importlib.metadata
import importlib.util

from modelhub import hookimpl
from modelhub.loading.types import Explanation, LoadRefused

REQUIRED = ("optimum", "gptqmodel")
INSTALL = "pip install 'modelhub[gptq]' (optimum==2.3.0 gptqmodel==7.6.0; gptqmodel builds from source)"


@hookimpl
def adjust_load_kwargs(model, kwargs):
    if model.quantization_method != "gptq":
        return None
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        stale = " (auto-gptq is installed, but it does not work with transformers 5)" if _installed("auto_gptq") else ""
        raise LoadRefused(f"{model.name} is a GPTQ checkpoint; loading it needs optimum and gptqmodel, and "
                          f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed{stale}. "
                          f"Install them: {INSTALL}. auto-gptq does not work with transformers 5.",
                          kind="missing_package", package=missing[0])
    if isinstance(kwargs.get("quantization_config"), dict) and kwargs["quantization_config"]:
        # The checkpoint is already quantized; bitsandbytes cannot quantize it a second time.
        raise LoadRefused(f"{model.name} is already GPTQ-quantized; remove quantization_config (and load_in_8bit/"
                          "load_in_4bit) from its load config.",
                          suggestion={"quantization_config": None, "load_in_8bit": None, "load_in_4bit": None},
                          kind="other")  # a conflict, not a setting to respect: auto-configure may try the suggestion
    bits = (model.config.get("quantization_config") or {}).get("bits")
    return [f"GPTQ checkpoint ({bits}-bit): loaded through optimum {_installed('optimum')} and gptqmodel "
            f"{_installed('gptqmodel')}."]


def _installed(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@hookimpl
def explain_failure(model, error):
    message = str(error)
    is_gptq = model is not None and model.quantization_method == "gptq"
    mentions = [name for name in ("auto_gptq", "gptqmodel", "optimum") if name in message]
    # "optimum" alone may be about another optimum feature; it is ours only for a GPTQ checkpoint. Without
    # gptqmodel (its CPU path) transformers says "GPU is required", which is ours too.
    ours = "GPTQ" in message or "gptq" in message or (is_gptq and (mentions or "GPU is required" in message))
    if not ours:
        return None
    return Explanation(f"Loading this GPTQ checkpoint failed in its GPTQ packages ({', '.join(mentions) or 'gptqmodel'}): "
                       f"transformers 5 needs optimum and gptqmodel (not auto-gptq). {INSTALL}.",
                       kind="missing_package", package="gptqmodel")


@hookimpl
def plan_load(model, load_config, plan):
    """Preflight: a GPTQ checkpoint stays packed at its bits (the weights as stored) and needs optimum and
    gptqmodel; bitsandbytes cannot quantize it a second time."""
    if model.quantization_method != "gptq":
        return None
    bits = (model.config.get("quantization_config") or {}).get("bits")
    plan.quantization, plan.quantize_on_load = "gptq", False
    plan.weight_bits = bits if isinstance(bits, (int, float)) else plan.weight_bits
    for package in REQUIRED:
        plan.need(package, "A GPTQ checkpoint (transformers 5 loads it through optimum and gptqmodel)")
    if isinstance(load_config.get("quantization_config"), dict) and load_config["quantization_config"]:
        raise LoadRefused(f"{model.name} is already GPTQ-quantized; remove quantization_config from its load config.",
                          suggestion={"quantization_config": None, "load_in_8bit": None, "load_in_4bit": None})
    return [f"GPTQ checkpoint ({bits}-bit): packed weights as stored"]
