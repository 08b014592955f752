"""The built-in loader: machine facts, the plain ``AutoModelForCausalLM`` load, and generic failure causes.

It owns the two keys every load may carry (``dtype``, ``revision``), describes the machine for the other
plugins (versions, GPUs, ROCm, WSL, which optional packages are installed), loads the model when no other
plugin does (``trylast``; with what transformers reported about the checkpoint's weights, which the
worker judges: modelhub/loading/verdict.py) and, also ``trylast``, turns the errors any load can hit (out of memory, a
removed keyword, missing or damaged files, NaN logits) into a cause and a load_config to try. Plugins
that know a narrower error answer ``explain_failure`` first.
"""

import importlib.metadata
import platform
import re
import sys

from marshmallow import fields, validate

from modelhub import hookimpl
from modelhub.autoconfigure import rules
from modelhub.loading.types import Explanation, LoadedModel, LoadRefused, Proposal

DTYPES = ("float32", "float16", "bfloat16", "auto")
# Optional packages other plugins care about; read from metadata so none is imported (importing
# bitsandbytes or flash_attn can take seconds or print warnings).
OPTIONAL_PACKAGES = ("bitsandbytes", "accelerate", "optimum", "gptqmodel", "flash_attn", "auto_gptq")


@hookimpl
def load_config_fields():
    return {
        "dtype": fields.String(
            validate=validate.OneOf(DTYPES, error="Must be one of: {choices} (the checkpoint's own dtype is used when unset)."),
            metadata={"description": "Weights dtype; 'auto' keeps the checkpoint's dtype."},
        ),
        "revision": fields.String(
            validate=validate.Length(min=1, max=200),
            metadata={"description": "Branch, tag or commit of the model repository."},
        ),
    }


@hookimpl(tryfirst=True)  # the base facts every other plugin may rely on
def describe_environment(environment):
    import torch
    import transformers

    gpus = []
    if torch.cuda.is_available():  # ROCm builds answer here too (HIP devices are torch.cuda devices)
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            gpus.append({"index": index, "name": properties.name, "memory_bytes": int(properties.total_memory),
                         "architecture": _architecture(properties)})
    packages = {name: _version(name) for name in OPTIONAL_PACKAGES}
    return {
        "bf16": _bf16(torch, gpus),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "accelerate": packages["accelerate"],
        "cuda": torch.version.cuda,
        "rocm": getattr(torch.version, "hip", None),
        "gpus": gpus,
        "wsl": _is_wsl(),
        "packages": packages,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _architecture(properties):
    """What the kernels are built for: the compute capability on CUDA (sm_89), gcnArchName on ROCm
    (gfx1100). Read from properties torch already has; None if this build does not expose them."""
    import torch

    try:
        if getattr(torch.version, "hip", None):
            return getattr(properties, "gcnArchName", None) or None
        return f"sm_{properties.major}{properties.minor}"
    except AttributeError:
        return None


def _bf16(torch, gpus) -> dict:
    """Whether this host computes in bfloat16 where models load: the GPUs if any, else the CPU. On HIP,
    torch.cuda.is_bf16_supported() answers True for every GPU, but RDNA1/2 (gfx10*) have no bf16 and
    kernels then fail ("Cannot select ... fdot2.bf16"): those are judged by architecture instead."""
    if not gpus:
        return {"supported": True, "why": "CPU: torch computes bfloat16 on the CPU."}
    if getattr(torch.version, "hip", None):
        without = [gpu["architecture"] for gpu in gpus if (gpu.get("architecture") or "").startswith("gfx10")]
        if without:
            return {"supported": False, "why": f"{without[0]} (RDNA1/2) has no bfloat16, although torch on ROCm "
                                               "says every GPU has it."}
        return {"supported": True, "why": "ROCm GPU with bfloat16."}
    try:
        supported = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # an older torch without the argument
        supported = torch.cuda.is_bf16_supported()
    return {"supported": bool(supported), "why": f"torch.cuda.is_bf16_supported() on {gpus[0]['name']}."}


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _is_wsl():
    try:
        with open("/proc/version", encoding="utf-8", errors="replace") as handle:
            return "microsoft" in handle.read().lower()
    except OSError:  # not Linux
        return False


@hookimpl
def adjust_load_kwargs(environment, kwargs):
    """bfloat16 where the host has none fails deep in a kernel, or computes garbage: refuse it up front."""
    bf16 = environment.get("bf16") or {}
    if kwargs.get("dtype") != "bfloat16" or bf16.get("supported") is not False or _all_on_cpu(kwargs.get("device_map")):
        return None
    raise LoadRefused(f"dtype 'bfloat16' is not supported here: {bf16.get('why', 'this GPU has no bfloat16.')} "
                      "Use float16 (same memory) or float32.", suggestion={"dtype": "float16"}, kind="bf16_unsupported")


def _all_on_cpu(device_map) -> bool:
    return device_map == "cpu" or (isinstance(device_map, dict) and set(device_map.values()) == {"cpu"})


@hookimpl
def propose_configs(failure, load_config):
    """The dtype steps of auto-configure (modelhub/autoconfigure/rules.py): bfloat16 unsupported -> float16,
    then float32; NaN or Inf logits -> float32 (after eager attention, which the attention plugin proposes)."""
    dtype = load_config.get("dtype") or load_config.get("torch_dtype")
    proposals = []
    for step, priority in rules.steps_for(failure.kind, ("float16", "float32")):
        if dtype == step:
            continue
        changes = {"dtype": step, "torch_dtype": None}  # dtype wins over the deprecated torch_dtype: drop it
        if step == "float16":
            why = "bfloat16 is not supported here; float16 takes the same memory."
            proposals.append(Proposal(changes, why, priority=priority))
        elif failure.kind == "bf16_unsupported":
            proposals.append(Proposal(changes, "Neither bfloat16 nor float16 worked; float32 works everywhere.",
                                      "float32 (no bf16 here): twice the memory of 16-bit weights", priority))
        else:
            proposals.append(Proposal(changes, f"NaN or Inf logits in {dtype or 'the checkpoint dtype'}; float32 has "
                                      "the range to avoid them.", "float32: twice the memory of 16-bit weights",
                                      priority))
    return proposals


@hookimpl(trylast=True)
def load_model(model, kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # What transformers found in the checkpoint comes back with the model, for the worker to judge. A shape
    # mismatch is not raised here (transformers would raise without naming the weights): it comes back
    # among the mismatched keys, and the worker fails the load naming them.
    call_kwargs = {"ignore_mismatched_sizes": True, **_unshared(kwargs), "output_loading_info": True}
    loaded, loading_info = AutoModelForCausalLM.from_pretrained(model.location, **call_kwargs)
    tokenizer_kwargs = {"revision": kwargs.get("revision")}
    if kwargs.get("trust_remote_code"):  # allowed by the safety plugin; custom tokenizers need it too
        tokenizer_kwargs["trust_remote_code"] = True
    tokenizer = AutoTokenizer.from_pretrained(model.location, **tokenizer_kwargs)
    return LoadedModel(model=loaded, tokenizer=tokenizer, loading_info=loading_info)


def _unshared(value):
    """Copies of the JSON-like dicts in kwargs: from_pretrained rewrites max_memory in place (sizes become
    bytes), and the worker records and explains failures with the kwargs as the plugins built them."""
    if isinstance(value, dict):
        return {key: _unshared(item) for key, item in value.items()}
    return value


@hookimpl(trylast=True)
def explain_failure(model, error, load_config, environment):
    message = _messages(error)
    for recognise in (_ml_libraries_missing, _out_of_memory, _unexpected_keyword, _flash_attention, _attention_kernel,
                      _bf16_unsupported, _no_accelerator, _files_unreachable, _missing_config, _unknown_architecture,
                      _damaged_weights, _non_finite):
        explanation = recognise(model, error, message, load_config, environment)
        if explanation:
            return explanation
    return None


def _messages(error):
    """The error's text and that of the errors it was raised from (a worker may wrap the original)."""
    texts, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    return "\n".join(texts)


def _ml_libraries_missing(model, error, message, load_config, environment):
    """The server installs without the ML libraries (they are an extra); loading needs them."""
    missing = getattr(error, "name", None)
    if not isinstance(error, ImportError) or missing not in ("torch", "transformers", "accelerate", "safetensors"):
        return None
    return Explanation(
        f"Loading models needs PyTorch and transformers, and {missing!r} is not installed where modelhub runs. "
        "Install them with: pip install 'modelhub[ml]' (the CPU build of torch 2.13.0; for a GPU install "
        "the matching torch build first).",
        kind="missing_package", package=missing,
    )


def _out_of_memory(model, error, message, load_config, environment):
    oom_type = getattr(sys.modules.get("torch"), "OutOfMemoryError", ())
    lower = message.lower()
    if not (isinstance(error, oom_type) or "out of memory" in lower or "can't allocate memory" in lower):
        return None
    # The error says which memory ran out: CUDA/HIP errors name the GPU, the CPU allocator the host.
    where = "GPU" if ("cuda" in lower or "hip" in lower or "gpu" in lower) else "system"
    quantization = (load_config.get("quantization_config") or {})
    if load_config.get("load_in_8bit") or quantization.get("load_in_8bit"):
        # Already 8-bit: the next step down is 4-bit.
        suggestion = {"device_map": "auto", "load_in_8bit": None,
                      "quantization_config": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}}
    else:
        suggestion = {"device_map": "auto", "quantization_config": {"load_in_8bit": True}}
    return Explanation(
        f"The model did not fit in {where} memory. Spreading it over the devices (device_map 'auto', which "
        "can also offload to CPU and disk) and quantizing it with bitsandbytes needs much less.",
        suggestion, kind="out_of_memory",
    )


def _unexpected_keyword(model, error, message, load_config, environment):
    found = re.search(r"unexpected keyword argument '([^']+)'", message)
    if not found:
        return None
    key = found.group(1)
    if key in load_config:
        return Explanation(
            f"This version of transformers does not accept '{key}' (it reached the model's constructor). "
            "Remove it from the load config.",
            {key: None},
        )
    return Explanation(f"from_pretrained was given '{key}', which this version of transformers does not accept; "
                       "it is not in the load config, so a plugin added it (see the attempt's plugin changes).")


def _flash_attention(model, error, message, load_config, environment):
    if not (isinstance(error, ImportError) and ("flash_attn" in message or "FlashAttention" in message)):
        return None
    return Explanation("attn_implementation asks for FlashAttention, but the flash-attn package is not installed "
                       "(or does not work with this torch). Eager attention works everywhere.",
                       {"attn_implementation": "eager"}, kind="attention")


# The real texts of fused-attention kernels failing: HIP has no kernel built for this GPU (ROCm), flash-attn on
# a GPU older than Ampere, SDPA finding no kernel for these inputs. Eager attention has a path on every device.
ATTENTION_ERRORS = ("HIP error: invalid device function", "FlashAttention only supports Ampere GPUs or newer",
                    "No available kernel. Aborting execution.")


def _attention_kernel(model, error, message, load_config, environment):
    found = next((text for text in ATTENTION_ERRORS if text in message), None)
    if found is None:
        return None
    hint = (" If eager attention fails the same way, this torch is not built for this GPU's architecture."
            if found.startswith("HIP") else "")
    return Explanation(f"A fused attention kernel failed on this device ({found!r}). Eager attention, the plain "
                       f"matmul-softmax path, works everywhere.{hint}", {"attn_implementation": "eager"},
                       kind="attention")


# bfloat16 reaching a kernel the GPU cannot run: LLVM on RDNA1/2 (Triton), Triton on pre-Ampere NVIDIA GPUs.
BF16_ERRORS = ("fdot2.bf16", "Bfloat16 is only supported on GPUs with compute capability of at least 8")


def _bf16_unsupported(model, error, message, load_config, environment):
    if not any(text in message for text in BF16_ERRORS):
        return None
    return Explanation("This GPU has no bfloat16 support, and a kernel failed on it. float16 takes the same memory.",
                       {"dtype": "float16", "torch_dtype": None} if "torch_dtype" in load_config else {"dtype": "float16"},
                       kind="bf16_unsupported")


_NO_ACCELERATOR = ("Torch not compiled with CUDA enabled", "Cannot access accelerator device when none is available",
                   "Found no NVIDIA driver", "not linked with support for mps", "No CUDA GPUs are available")


def _no_accelerator(model, error, message, load_config, environment):
    if not any(text in message for text in _NO_ACCELERATOR):
        return None
    suggestion = {"device_map": "cpu"}
    if "max_memory" in load_config:  # GPU budgets make no sense without a GPU
        suggestion["max_memory"] = None
    return Explanation("The load config puts the model on a GPU, but this torch build or machine has none "
                       f"(torch {environment.get('torch')}, cuda {environment.get('cuda')}, "
                       f"rocm {environment.get('rocm')}). Load it on the CPU.", suggestion)


def _files_unreachable(model, error, message, load_config, environment):
    """Not on disk, and the Hub out of reach: nothing was learned about the model itself."""
    if "LocalEntryNotFoundError" not in message:
        return None
    repo = model.hf_path if model is not None else "the model"
    return Explanation(
        f"{repo}'s files are not on this machine and the Hugging Face Hub could not be reached (no network, or "
        "HF_HUB_OFFLINE is set), so the load could not be tried: its status is left as it was. Download it "
        f"(huggingface-cli download {repo}) or register the folder that holds it, then load it again.",
        kind="files",
    )


def _missing_config(model, error, message, load_config, environment):
    if not ("does not appear to have a file named config.json" in message
            or "Should have a `model_type` key in its config.json" in message):
        return None
    if model is not None and model.files and "config.json" in model.files:
        return Explanation(f"{model.location}/config.json has no 'model_type', so transformers cannot tell which "
                           "architecture it is. The file is damaged or not a transformers config.", kind="files")
    where = model.location if model is not None else "the model directory"
    return Explanation(f"{where} has no config.json: the model's files are missing or incomplete. "
                       "Download the model again (e.g. huggingface-cli download) or fix its cache_path.", kind="files")


def _unknown_architecture(model, error, message, load_config, environment):
    model_type = model.model_type if model is not None else None
    if "does not recognize this architecture" in message:
        found = re.search(r"model type `([^`]+)`", message)
        model_type = found.group(1) if found else model_type
    elif not (isinstance(error, KeyError) and model_type and model_type in error.args):
        return None
    return Explanation(f"transformers {environment.get('transformers')} does not know architecture '{model_type}'. "
                       "The checkpoint may need a newer transformers, or it ships its own code (trust_remote_code).")


def _damaged_weights(model, error, message, load_config, environment):
    markers = ("SafetensorError", "incomplete metadata", "Error while deserializing header", "truncated",
               "invalid header length")
    if not any(marker in message for marker in markers):
        return None
    return Explanation("A weights file is damaged or truncated (an interrupted download?): its contents do not "
                       "match its header. Delete it and download the model again.", kind="files")


def _non_finite(model, error, message, load_config, environment):
    if not (isinstance(error, ValueError) and "non-finite" in message):
        return None
    on_gpu = bool(environment.get("gpus")) and (environment.get("bf16") or {}).get("supported") is not False
    dtype = "bfloat16" if on_gpu and (load_config.get("dtype") or load_config.get("torch_dtype")) != "bfloat16" else "float32"
    suggestion = {"dtype": dtype}
    if "torch_dtype" in load_config:  # dtype wins over torch_dtype; drop the old key to avoid confusion
        suggestion["torch_dtype"] = None
    return Explanation("The model produced NaN or Inf logits. float16 overflows in some architectures, and on "
                       f"ROCm fused fp16 kernels are a known source of NaNs; {dtype} has the range to avoid it.",
                       suggestion, kind="non_finite")


@hookimpl
def plan_load(load_config, plan):
    """Preflight: the weights' dtype (``dtype``, or the deprecated ``torch_dtype`` legacy_keys renames);
    unset or "auto" keeps the checkpoint's own, as transformers 5 does."""
    dtype = load_config.get("dtype") or load_config.get("torch_dtype")
    if dtype in (None, "auto"):
        return None
    plan.dtype = dtype
    if plan.checkpoint_dtype and dtype != plan.checkpoint_dtype:
        return [f"weights converted from {plan.checkpoint_dtype} to {dtype} while loading"]
    return None
