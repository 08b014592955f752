"""Makes a load fail the ways real loads do, on request through its load_config keys (tests only).

- ``fault_hang_seconds``: the load hangs that long (the supervisor's timeout must act);
- ``fault_crash``: ``segv`` / ``abort`` / ``exit`` kill the worker process the hard way;
- ``fault_oom``: loading raises the real ``torch.OutOfMemoryError`` with CUDA's message;
- ``fault_exit_on_sigusr1``: the worker exits with that code when sent SIGUSR1 (a loaded model's worker
  that ends on its own, at a moment the test chooses);
- ``fault_litter_cwd``: writes ``logs/litter.log`` in the current directory, as gptqmodel does.

The keys are taken out of the kwargs while they are prepared (they are not from_pretrained arguments)
and acted on when loading starts, so the failures happen where real ones do: mid-load.
"""

import os
import signal
import time

from marshmallow import fields, validate

from modelhub import hookimpl

_requested: dict = {}  # one worker process loads one model: the faults asked for this load


@hookimpl
def load_config_fields():
    return {
        "fault_hang_seconds": fields.Float(validate=validate.Range(min=0, max=3600)),
        "fault_crash": fields.String(validate=validate.OneOf(["segv", "abort", "exit"])),
        "fault_oom": fields.Boolean(),
        "fault_exit_on_sigusr1": fields.Integer(validate=validate.Range(min=1, max=255)),
        "fault_litter_cwd": fields.Boolean(),
    }


@hookimpl(tryfirst=True)
def adjust_load_kwargs(kwargs):
    for key in ("fault_hang_seconds", "fault_crash", "fault_oom", "fault_exit_on_sigusr1", "fault_litter_cwd"):
        if key in kwargs:
            _requested[key] = kwargs.pop(key)
    return [f"faults requested: {sorted(_requested)}"] if _requested else None


@hookimpl(tryfirst=True)
def load_model():
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
    if _requested.get("fault_oom"):
        import torch

        raise torch.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 15.98 GiB"
        )
    return None  # no fault: the normal loader loads
