"""From a load_config to a :class:`LoadPlan`, the way the plugins will load it: every plugin's
``plan_load`` in pluggy's order, each isolated (one broken plugin adds a note, not an error page), then
the checks no single plugin owns: the packages the plan needs, and the compute device's capabilities."""

import logging

from modelhub.loading.types import LoadRefused, ModelInfo
from modelhub.preflight import host as host_facts
from modelhub.preflight.checkpoint import Checkpoint
from modelhub.preflight.plan import LoadPlan

log = logging.getLogger(__name__)


def model_info(model_row, checkpoint: Checkpoint) -> ModelInfo:
    gguf = checkpoint.gguf
    return ModelInfo(name=model_row.model_name, hf_path=model_row.hf_path, location=checkpoint.directory,
                     config={} if gguf else checkpoint.config, files=list(checkpoint.files),
                     gguf=None if gguf is None else {
                         "file": gguf["file"], "architecture": gguf["architecture"],
                         "model_type": checkpoint.config.get("model_type"), "quantization": gguf["quantization"],
                         "tensor_types": gguf["tensor_types"], "parameter_count": checkpoint.parameters,
                         "context_length": checkpoint.config.get("max_position_embeddings"),
                         "unsupported": gguf["unsupported"]})


def initial_plan(checkpoint: Checkpoint) -> LoadPlan:
    """What the checkpoint itself says before any key applies: its dtype, its own quantization."""
    plan = LoadPlan(checkpoint_dtype=checkpoint.dtype)
    if checkpoint.gguf:  # dequantized while loading: estimate.weights counts the parameters at the load's dtype
        plan.quantization = "gguf"
    elif checkpoint.quantization:  # pre-quantized files (GPTQ, AWQ, ...): packed integers as stored
        plan.quantization = checkpoint.quantization
        bits = (checkpoint.config.get("quantization_config") or {}).get("bits")
        plan.weight_bits = bits if isinstance(bits, (int, float)) else None
    return plan


def make_plan(plugins, model: ModelInfo, load_config: dict, host: dict, checkpoint: Checkpoint) -> LoadPlan:
    plan = initial_plan(checkpoint)
    for name, function in plugins.implementations("plan_load"):
        try:
            notes = function(model=model, load_config=load_config, plan=plan, host=host)
        except LoadRefused as refusal:
            plan.problems.append({"kind": "missing_package" if refusal.kind == "missing_package" else "refused",
                                  "message": str(refusal), "package": refusal.package,
                                  "suggestion": refusal.suggestion, "plugin": name})
            continue
        except Exception as error:  # noqa: BLE001 - one plugin's bug must not blank the answer
            log.warning("plugin %s failed in plan_load: %s", name, error)
            plan.notes.append(f"The {name} plugin could not plan this config ({type(error).__name__}: {error}); "
                              "its keys are not counted.")
            continue
        plan.notes.extend(f"{name}: {note}" for note in notes or [])
    _check_packages(plan, host)
    _check_capabilities(plan, host)
    return plan


def _check_packages(plan: LoadPlan, host: dict) -> None:
    for package, why in plan.packages.items():
        if host_facts.installed(host, package) is None and not any(p.get("package") == package for p in plan.problems):
            plan.problems.append({"kind": "missing_package", "package": package,
                                  "message": f"{why} needs the {package} package, which is not installed here: "
                                             f"pip install {package}", "suggestion": plan.instead.get(package)})


def _check_capabilities(plan: LoadPlan, host: dict) -> None:
    """bf16 on the GPU that computes: ROCm's RDNA1/2 (gfx10*) have none, whatever torch reports."""
    dtype = plan.quantization_overhead.get("compute_dtype") or plan.dtype or plan.checkpoint_dtype
    if dtype != "bfloat16":
        return
    devices = [plan.device] if not plan.spread else [f"gpu{gpu.get('index', 0)}" for gpu in host.get("gpus") or []][:1]
    for gpu in host.get("gpus") or []:
        architecture = str(gpu.get("architecture") or "")
        if f"gpu{gpu.get('index', 0)}" in devices and architecture.startswith("gfx10"):
            plan.problems.append({"kind": "capability", "package": None,
                                  "message": f"GPU {gpu.get('index', 0)} ({architecture}) has no bfloat16 support "
                                             "(ROCm reports it anyway, then kernels fail): use float16 or float32.",
                                  "suggestion": {"dtype": "float16"}})
