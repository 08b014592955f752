"""Makes a load fail the ways real loads do, on request through its load_config keys (tests only).

- ``fault_hang_seconds``: the load hangs that long (the supervisor's timeout must act);
- ``fault_crash``: ``segv`` / ``abort`` / ``exit`` kill the worker process the hard way;
- ``fault_oom``: loading raises the real ``torch.OutOfMemoryError`` with CUDA's message;
- ``fault_exit_on_sigusr1``: the worker exits with that code when sent SIGUSR1 (a loaded model's worker
  that ends on its own, at a moment the test chooses);
- ``fault_litter_cwd``: writes ``logs/litter.log`` in the current directory, as gptqmodel does;
- ``fault_bf16_unsupported: true``: this host reports no bfloat16 (``environment["bf16"]["supported"]`` is
  False, as on a ROCm gfx10* GPU), so default_loader refuses dtype "bfloat16" (kind ``bf16_unsupported``);
- ``fault_attention: "<error text>"``: loading raises ``RuntimeError(text)`` unless ``attn_implementation`` is
  "eager", as fused attention fails on ROCm (use the real texts in :data:`ATTENTION_ERRORS`). The text of a
  GPU memory access fault does what the HIP runtime does instead: prints it and aborts (a crash);
- ``fault_hide_package: "<module>"``: that package is missing in this worker (``sys.modules[name] = None``:
  ``importlib.util.find_spec`` answers None and importing it fails), as on a machine without it.

The keys are taken out of the kwargs while they are prepared (they are not from_pretrained arguments)
and acted on when loading starts, so the failures happen where real ones do: mid-load.
"""

import os
import signal
import sys
import time

from marshmallow import fields, validate

from modelhub import hookimpl

_requested: dict = {}  # one worker process loads one model: the faults asked for this load
KEYS = ("fault_hang_seconds", "fault_crash", "fault_oom", "fault_exit_on_sigusr1", "fault_litter_cwd",
        "fault_bf16_unsupported", "fault_attention", "fault_hide_package")

# Real texts of fused-attention failures (torch on ROCm, flash-attn, SDPA) and of a ROCm GPU fault.
ATTENTION_ERRORS = {
    "hip_invalid_device_function": (
        "HIP error: invalid device function\nHIP kernel errors might be asynchronously reported at some other API "
        "call, so the stacktrace below might be incorrect.\nFor debugging consider passing AMD_SERIALIZE_KERNEL=3\n"
        "Compile with `TORCH_USE_HIP_DSA` to enable device-side assertions."),
    "flash_attention_ampere": "FlashAttention only supports Ampere GPUs or newer.",
    "sdpa_no_kernel": "No available kernel. Aborting execution.",
    "memory_access_fault": ("Memory access fault by GPU node-1 (Agent handle: 0x5581a4b0c2d0) on address "
                            "0x7f2c4c000000. Reason: Page not present or supervisor privilege."),
}


@hookimpl
def load_config_fields():
    return {
        "fault_hang_seconds": fields.Float(validate=validate.Range(min=0, max=3600)),
        "fault_crash": fields.String(validate=validate.OneOf(["segv", "abort", "exit"])),
        "fault_oom": fields.Boolean(),
        "fault_exit_on_sigusr1": fields.Integer(validate=validate.Range(min=1, max=255)),
        "fault_litter_cwd": fields.Boolean(),
        "fault_bf16_unsupported": fields.Boolean(),
        "fault_attention": fields.String(validate=validate.Length(min=1, max=2000)),
        "fault_hide_package": fields.String(validate=validate.Length(min=1, max=100)),
    }


@hookimpl(tryfirst=True)
def adjust_load_kwargs(environment, kwargs):
    for key in KEYS:
        if key in kwargs:
            _requested[key] = kwargs.pop(key)
    if _requested.get("fault_bf16_unsupported"):
        # describe_environment cannot see the load_config; the facts are one dict, shared by the later
        # hooks and recorded with the attempt, so changing them here is what a gfx10* host reports.
        environment["bf16"] = {"supported": False, "why": "gfx1030 (RDNA1/2) has no bfloat16 (fault_bf16_unsupported)."}
    if _requested.get("fault_hide_package"):
        sys.modules[_requested["fault_hide_package"]] = None
    return [f"faults requested: {sorted(_requested)}"] if _requested else None


@hookimpl(tryfirst=True)
def load_model(kwargs):
    if _requested.get("fault_exit_on_sigusr1"):
        code = _requested["fault_exit_on_sigusr1"]
        signal.signal(signal.SIGUSR1, lambda *_: os._exit(code))
    if _requested.get("fault_litter_cwd"):
        os.makedirs("logs", exist_ok=True)
        with open(os.path.join("logs", "litter.log"), "w") as log:
            log.write(f"written by worker {os.getpid()}\n")
    if _requested.get("fault_hang_seconds"):
        time.sleep(_requested["fault_hang_seconds"])
    crash = _requested.get("fault_crash")
    if crash == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif crash == "abort":
        os.abort()
    elif crash == "exit":
        os._exit(3)
    attention_error = _requested.get("fault_attention")
    if attention_error and kwargs.get("attn_implementation") != "eager":
        if attention_error.startswith("Memory access fault by GPU node"):
            print(attention_error, file=sys.stderr, flush=True)  # the HIP runtime's own way out
            os.abort()
        raise RuntimeError(attention_error)
    if _requested.get("fault_oom"):
        import torch

        raise torch.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 15.98 GiB"
        )
    return None  # no fault: the normal loader loads
