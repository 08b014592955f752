"""Eager attention for architectures whose fused attention fails on ROCm and under WSL.

The registry's own records say Phi-family models need ``attn_implementation: "eager"`` on ROCm/WSL (the
example users share for Phi models on ROCm/WSL): with transformers' default fused attention (SDPA) they
crash or produce NaN logits there, while eager attention, the plain matmul-softmax path, works. Rather
than every Phi entry carrying that setting, this plugin adds it when the worker runs on ROCm or WSL and
the model's ``model_type`` is in :data:`FUSED_ATTENTION_FAILS` (extend it without a release through
``MODELHUB_EAGER_ARCHITECTURES``, a comma-separated list of model_type values). A choice the user made in
the load config is always kept. The plugin also owns ``attn_implementation`` and checks its value.
"""

import os

from marshmallow import fields, validate

from modelhub import hookimpl
from modelhub.autoconfigure import rules
from modelhub.loading.types import Proposal

# model_type values (config.json) seen failing with fused attention on ROCm/WSL: Phi-1/1.5/2 ("phi"),
# Phi-3/3.5/4 ("phi3"; Phi-4 reuses the Phi-3 architecture), Phi-3.5-MoE ("phimoe") and Phi-4-multimodal.
FUSED_ATTENTION_FAILS = frozenset({"phi", "phi3", "phimoe", "phi4_multimodal"})
ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2", "flex_attention")


def eager_architectures() -> set[str]:
    """The built-in list plus ``MODELHUB_EAGER_ARCHITECTURES``, read at load time (the worker's environment)."""
    extra = os.environ.get("MODELHUB_EAGER_ARCHITECTURES", "")
    return set(FUSED_ATTENTION_FAILS) | {name.strip() for name in extra.split(",") if name.strip()}


@hookimpl
def load_config_fields():
    return {"attn_implementation": fields.String(
        validate=validate.OneOf(ATTENTION_IMPLEMENTATIONS, error="Must be one of: {choices}."),
        metadata={"description": "Attention kernel; eager works everywhere, sdpa is transformers' default."},
    )}


@hookimpl
def adjust_load_kwargs(model, environment, kwargs):
    platforms = [name for name, present in (("ROCm", environment.get("rocm")), ("WSL", environment.get("wsl"))) if present]
    if not platforms or model.model_type not in eager_architectures():
        return None
    where = " under ".join(platforms)
    if "attn_implementation" in kwargs:
        return [f"attn_implementation={kwargs['attn_implementation']!r} from the load config kept, although "
                f"{model.model_type} models usually need 'eager' on {where}."]
    kwargs["attn_implementation"] = "eager"
    return [f"attn_implementation='eager' set: {model.model_type} models crash or produce NaNs with fused "
            f"(SDPA) attention on {where}; eager attention avoids it."]


@hookimpl
def propose_configs(model, failure, load_config, environment):
    """Auto-configure's attention steps (modelhub/autoconfigure/rules.py): a fused attention kernel failing,
    or NaN/Inf logits (SDPA in float16 on ROCm) -> eager attention; a crash on ROCm or WSL (a fused kernel's
    "Memory access fault by GPU node") -> eager attention too, after the memory steps."""
    chosen = load_config.get("attn_implementation")
    on_rocm_or_wsl = bool(environment.get("rocm") or environment.get("wsl"))
    if chosen is None and on_rocm_or_wsl and model is not None and model.model_type in eager_architectures():
        chosen = "eager"  # adjust_load_kwargs sets it anyway: the failed try already ran eager
    proposals = []
    for step, priority in rules.steps_for(failure.kind, ("eager", "eager_on_rocm")):
        if chosen == "eager" or (step == "eager_on_rocm" and not on_rocm_or_wsl):
            continue
        why = {"attention": f"A fused attention kernel failed ({chosen or 'sdpa, the default'}); eager attention "
                            "works everywhere.",
               "non_finite": "NaN or Inf logits: fused attention (SDPA) in float16 returns NaNs on some setups "
                             "(ROCm); eager attention keeps the dtype and the memory."}.get(
            failure.kind, "The worker crashed on ROCm/WSL, where fused attention kernels fault; eager attention avoids them.")
        proposals.append(Proposal({"attn_implementation": "eager"}, why, priority=priority))
    return proposals


@hookimpl
def plan_load(model, load_config, plan, host):
    """Preflight: which attention runs (eager keeps a tokens x tokens score matrix per head), including
    the eager attention this plugin sets on ROCm/WSL."""
    chosen = load_config.get("attn_implementation")
    if chosen is None and (host.get("rocm") or host.get("wsl")) and model.model_type in eager_architectures():
        chosen = "eager"
    plan.attn_implementation = chosen or plan.attn_implementation
    if chosen == "flash_attention_2":
        plan.need("flash_attn", "attn_implementation 'flash_attention_2'",
                  instead={"attn_implementation": None})
    return None
