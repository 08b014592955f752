"""Placing a model across GPUs, CPU and disk with accelerate: ``device_map``, ``max_memory``, ``offload_folder``.

A load config is JSON, so ``max_memory`` arrives as ``{"0": "15GiB"}``, and accelerate refuses the string
key ("Device 0 is not recognized"); with the integer key on a machine without that GPU it fails with
"Cannot access accelerator device". The same saved config should load on the big box and the laptop, so
this plugin turns GPU keys into integers, drops budgets for GPUs this machine does not have (with a note),
adds ``device_map="auto"`` when only ``max_memory`` is given (without it transformers silently ignores
``max_memory``), and gives disk offloading a folder (transformers needs one for weights not stored as
safetensors). Values are checked when the config is saved.
"""

import importlib.util
import re
from pathlib import Path

from marshmallow import ValidationError, fields, validate

from modelhub import hookimpl
from modelhub.autoconfigure import rules
from modelhub.loading.types import Explanation, LoadRefused, Proposal

STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential", "cpu", "cuda", "mps")
# Strategies under which accelerate may decide to put weights on disk.
SPREADING = ("auto", "balanced", "balanced_low_0", "sequential")
NAMED_DEVICES = ("cpu", "disk", "mps")
CUDA_DEVICE = re.compile(r"cuda:[0-9]+")
GPU_KEY = re.compile(r"[0-9]+")  # not str.isdigit(): that also takes "²", which int() refuses
# The units accelerate's convert_file_size_to_int understands; case matters ("Gb" would mean gigabits).
SIZE = re.compile(r"\d+(\.\d+)?(GiB|MiB|KiB|GB|MB|KB)")
ACCELERATE_PIN = "accelerate==1.15.0"


def _is_gpu_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class DeviceMap(fields.Field):
    """A placement strategy name, ``cuda:N``, or ``{module name: device}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if value in STRATEGIES or CUDA_DEVICE.fullmatch(value):
                return value
            raise ValidationError(f"Must be one of {', '.join(STRATEGIES)}, 'cuda:N', or an object mapping "
                                  "module names to devices.")
        if not isinstance(value, dict) or not value:
            raise ValidationError("Must be a strategy name such as 'auto', or a non-empty object mapping module "
                                  "names to devices ({\"\": \"cpu\"} places the whole model).")
        for module, device in value.items():
            if not (_is_gpu_index(device) or device in NAMED_DEVICES or
                    (isinstance(device, str) and CUDA_DEVICE.fullmatch(device))):
                raise ValidationError(f"Device {device!r} for module {module!r} must be a GPU index (0, 1, ...), "
                                      "'cuda:N', 'cpu', 'disk' or 'mps'.")
        return value


class MaxMemory(fields.Field):
    """``{device: budget}``: GPU index (as a JSON string key) or cpu/disk/mps, to "15GiB" or bytes."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict) or not value:
            raise ValidationError('Must be a non-empty object such as {"0": "15GiB", "cpu": "30GiB"}.')
        for device, budget in value.items():
            if not (_is_gpu_index(device) or GPU_KEY.fullmatch(str(device)) or device in NAMED_DEVICES):
                raise ValidationError(f"Unknown device {device!r}: use a GPU index (\"0\", \"1\", ...), "
                                      "\"cpu\", \"disk\" or \"mps\".")
            if not (_is_gpu_index(budget) or (isinstance(budget, str) and SIZE.fullmatch(budget))):
                raise ValidationError(f"Budget {budget!r} for {device!r} must be a size like \"15GiB\", \"500MB\" "
                                      "or \"1.5GB\" (units GiB, MiB, KiB, GB, MB, KB) or a whole number of bytes "
                                      "(0 keeps the device out).")
        return value


@hookimpl
def load_config_fields():
    return {
        "device_map": DeviceMap(metadata={"description": "Where each part of the model goes (accelerate)."}),
        "max_memory": MaxMemory(metadata={"description": 'Per-device budgets, e.g. {"0": "15GiB", "cpu": "30GiB"}.'}),
        "offload_folder": fields.String(validate=validate.Length(min=1, max=1000),
                                        metadata={"description": "Where weights offloaded to disk are written."}),
    }


@hookimpl
def adjust_load_kwargs(model, environment, kwargs):
    if "device_map" not in kwargs and "max_memory" not in kwargs:
        return None
    if importlib.util.find_spec("accelerate") is None:
        raise LoadRefused("device_map and max_memory are handled by the accelerate package, which is not installed "
                          f"in the worker's environment: pip install {ACCELERATE_PIN}",
                          kind="missing_package", package="accelerate")
    gpus = environment.get("gpus")  # None when the environment could not be described: change nothing
    notes = []
    if "max_memory" in kwargs:
        notes.extend(_fit_max_memory(kwargs, gpus))
    if "max_memory" in kwargs and "device_map" not in kwargs:
        kwargs["device_map"] = "auto"
        notes.append("device_map='auto' added: transformers ignores max_memory without a device_map.")
    _refuse_missing_gpu(kwargs.get("device_map"), gpus)
    if _may_offload_to_disk(kwargs.get("device_map")) and "offload_folder" not in kwargs:
        kwargs["offload_folder"] = str(_offload_dir(environment, model.name))
        notes.append(f"offload_folder set to {kwargs['offload_folder']}: if accelerate puts weights on disk, those not "
                     "stored as safetensors must be re-saved there (transformers refuses to offload them otherwise).")
    return notes


def _fit_max_memory(kwargs, gpus):
    notes, budgets, renamed = [], {}, []
    for device, budget in kwargs["max_memory"].items():
        # JSON object keys are strings; accelerate wants GPU indexes as ints.
        index = int(device) if isinstance(device, str) and GPU_KEY.fullmatch(device) else device
        if isinstance(index, int) and gpus is not None and index >= len(gpus):
            notes.append(f"max_memory[{device!r}]={budget!r} dropped: this machine has {len(gpus)} GPU(s), and "
                         "accelerate fails on a budget for a GPU it cannot see.")
            continue
        if index is not device:
            renamed.append(device)
        budgets[index] = budget
    if renamed:
        notes.append(f"max_memory keys {', '.join(map(repr, renamed))} turned into integers (accelerate does not "
                     "recognise GPU indexes written as strings).")
    if not budgets:
        del kwargs["max_memory"]
        notes.append("max_memory dropped: no budget is left for a device this machine has; accelerate uses "
                     "what it finds.")
        return notes
    if notes and all(isinstance(device, str) for device in budgets):
        notes.append(f"max_memory now only budgets {', '.join(budgets)}: the model goes to CPU (and disk).")
    kwargs["max_memory"] = budgets
    return notes


def _refuse_missing_gpu(device_map, gpus):
    """Fail early with a clear message rather than with torch's "Torch not compiled with CUDA enabled"."""
    if gpus is None:
        return
    wanted = []
    if isinstance(device_map, str) and (device_map == "cuda" or CUDA_DEVICE.fullmatch(device_map)):
        wanted = [int(device_map.partition(":")[2] or 0)]
    elif isinstance(device_map, dict):
        wanted = [_gpu_index(device) for device in device_map.values() if _gpu_index(device) is not None]
    missing = sorted({index for index in wanted if index >= len(gpus)})
    if missing:
        raise LoadRefused(f"device_map {device_map!r} puts modules on GPU {', '.join(map(str, missing))}, but this "
                          f"machine has {len(gpus)} GPU(s) that torch can use.",
                          suggestion={"device_map": "auto" if gpus else "cpu"})


def _gpu_index(device):
    if _is_gpu_index(device):
        return device
    if isinstance(device, str) and CUDA_DEVICE.fullmatch(device):
        return int(device.partition(":")[2])
    return None


def _may_offload_to_disk(device_map) -> bool:
    if isinstance(device_map, dict):
        return "disk" in device_map.values()
    return device_map in SPREADING


def _offload_dir(environment, model_name) -> Path:
    from modelhub.settings import default_data_dir

    base = environment.get("modelhub", {}).get("offload_dir") or default_data_dir() / "offload"
    return Path(base) / re.sub(r"[^A-Za-z0-9._-]+", "_", model_name)


@hookimpl
def propose_configs(failure, load_config, environment):
    """Auto-configure's placement steps (modelhub/autoconfigure/rules.py): out of memory -> spread over the
    devices within budgets, the rest offloaded to disk (offload_folder is added when the try loads, by
    adjust_load_kwargs); accelerate missing -> no placement keys (the whole model on one device)."""
    proposals = []
    for step, priority in rules.steps_for(failure.kind, ("offload", "drop_placement")):
        proposal = (_offload(load_config, environment) if step == "offload" and rules.is_installed(environment, "accelerate")
                    else _drop_placement(failure, load_config) if step == "drop_placement" else None)
        if proposal:
            proposal.priority = priority
            proposals.append(proposal)
    return proposals


def _offload(load_config, environment):
    device_map = load_config.get("device_map", "auto")  # max_memory alone gets device_map "auto" when loading
    if load_config.get("max_memory") and device_map in SPREADING:
        return None  # already spread within budgets: what is left is to need less memory (quantization)
    quantization = load_config.get("quantization_config") or {}
    bitsandbytes = any(quantization.get(key) or load_config.get(key) for key in ("load_in_8bit", "load_in_4bit"))
    if bitsandbytes and environment.get("gpus") == []:
        return None  # without a GPU bitsandbytes cannot run offloaded layers (generation fails)
    budgets = _budgets(environment)
    changes = {"max_memory": budgets} if load_config.get("device_map") in SPREADING else {"device_map": "auto",
                                                                                          "max_memory": budgets}
    gpus = ", ".join(f"GPU {key} (up to {value})" for key, value in budgets.items() if key != "cpu")
    return Proposal(changes, f"Out of memory: spread the model over {gpus + ', ' if gpus else ''}the CPU (up to "
                    f"{budgets['cpu']}) and disk beyond that (device_map 'auto' with max_memory budgets).",
                    f"parts offloaded to {'CPU and ' if gpus else ''}disk beyond {budgets['cpu']} of RAM (slower)")


def _budgets(environment) -> dict:
    """Budgets that leave room: on a GPU 1 GiB or 10% (whichever is more) for the CUDA/HIP context, activations
    and the KV cache (llama.cpp keeps 1 GiB too); in RAM 40% of what is free now (or of the worker's memory
    limit) for torch itself, activations and the smoke test."""
    import psutil

    budgets = {}
    for gpu in environment.get("gpus") or []:
        total = int(gpu.get("memory_bytes") or 0)
        budgets[str(gpu["index"])] = _mib(total - max(2**30, total // 10))
    room = psutil.virtual_memory().available
    limit = (environment.get("modelhub") or {}).get("memory_limit_bytes")
    budgets["cpu"] = _mib(min(room, limit) * 6 // 10 if limit else room * 6 // 10)
    return budgets


def _mib(size: int) -> str:
    return f"{max(size, 0) // 2**20}MiB"


def _drop_placement(failure, load_config):
    keys = [key for key in ("device_map", "max_memory", "offload_folder") if key in load_config]
    if rules.package_name(failure.package) != "accelerate" or not keys:
        return None
    return Proposal({key: None for key in keys}, f"accelerate is not installed ({failure.cause}); without "
                    f"{', '.join(keys)} the whole model loads on one device.")


@hookimpl
def explain_failure(model, error, environment):
    if "provide an `offload_folder`" not in str(error):
        return None
    folder = _offload_dir(environment, model.name if model is not None else "model")
    return Explanation("accelerate offloaded part of the model to disk, and weights that are not stored as "
                       "safetensors must be re-saved to a folder first; none was given.",
                       {"offload_folder": str(folder)})


_UNITS = {"GiB": 2**30, "MiB": 2**20, "KiB": 2**10, "GB": 10**9, "MB": 10**6, "KB": 10**3}


def budget_bytes(budget) -> int:
    """A max_memory budget ("15GiB", "500MB", bytes) in bytes, as accelerate reads it."""
    if isinstance(budget, int):
        return budget
    found = SIZE.fullmatch(budget)
    unit = found.group(2)
    return int(float(budget[: -len(unit)]) * _UNITS[unit])


@hookimpl
def plan_load(load_config, plan, host):
    """Preflight: one device (``cpu``, ``cuda:N``) or spread by accelerate (``auto``...) within the
    max_memory budgets, the rest offloaded to disk; budgets for GPUs this host lacks are dropped, as
    adjust_load_kwargs drops them."""
    device_map, max_memory = load_config.get("device_map"), load_config.get("max_memory")
    if device_map is None and max_memory is None:
        return None
    plan.need("accelerate", "device_map/max_memory")
    gpus, notes = host.get("gpus") or [], []
    for device, budget in (max_memory or {}).items():
        if isinstance(device, int) or GPU_KEY.fullmatch(str(device)):
            if int(device) >= len(gpus):
                notes.append(f"max_memory[{device!r}] dropped: this host has {len(gpus)} GPU(s)")
                continue
            plan.budgets[f"gpu{int(device)}"] = budget_bytes(budget)
        else:
            plan.budgets[str(device)] = budget_bytes(budget)
    device_map = "auto" if device_map is None else device_map
    targets = set(device_map.values()) if isinstance(device_map, dict) else {device_map}
    if len(targets) > 1 or targets & set(SPREADING):
        plan.spread = True
        plan.offload_to_disk = "disk" in targets or bool(targets & set(SPREADING))
        plan.offload_folder = load_config.get("offload_folder")
        return notes + ["spread over the devices by accelerate" + (", the rest offloaded to disk" if plan.offload_to_disk else "")]
    (target,) = targets
    index = _gpu_index(target) if target != "cuda" else 0
    if index is not None and host.get("gpus_known", bool(gpus)) and index >= len(gpus):
        raise LoadRefused(f"device_map {device_map!r} puts the model on GPU {index}, but this host has {len(gpus)} GPU(s).",
                          suggestion={"device_map": "auto"})
    plan.device = f"gpu{index}" if index is not None else "cpu"
    return notes
