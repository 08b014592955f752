"""The built-in auto-configure rules, as data: which steps to try, in which order, after each kind of failure.

A step is done by the plugin that owns its load_config keys (``propose_configs`` in ``plugins/``): the
device_map plugin knows how to offload, bitsandbytes how to quantize, default_loader how to change the
dtype, rocm_eager_attention how to change the attention. Each reads its steps and their priorities from
:data:`STEPS`, so the order of the whole ladder is written once, here. A third-party plugin proposes its
own configs with its own priorities (lower is tried first; the built-in steps are 10, 20, 30, ...).

Why each decision:

- ``out_of_memory`` / ``wont_fit``: spread over the devices with a budget (keeps quality: nothing is
  quantized), then 8-bit, then 4-bit. A fallback keeps what the user had (sglang #34772 dropped CPU offload
  on a retry and ran out of memory again), so 8-bit after offloading still offloads.
- ``crash``: a worker that dies without a Python error was, on a desktop, almost always killed by the
  kernel's OOM killer (SIGKILL leaves no message), or on ROCm faulted in a fused kernel ("Memory access
  fault by GPU node"). So a crash is treated like running out of memory, plus eager attention on ROCm/WSL.
  Only :data:`CRASH_LIMIT` crashes per search: past that the cause is something else, and repeating it
  costs a dead worker each time.
- ``attention``: eager attention, the plain matmul-softmax path, has a kernel on every device.
- ``non_finite``: eager attention first (SDPA in float16 returns NaNs on some ROCm setups; eager keeps the
  dtype and the memory), then float32.
- ``bf16_unsupported``: float16 (same memory), then float32.
- ``missing_package``: drop what needs the package, and say what to install.
- ``refused``, ``files``: stop. A refused setting (remote code, pickle weights) is the user's decision,
  never the search's; files that are not here are not a config problem.
- ``timeout``: stop. A load that hangs until the limit will most likely hang again, each try costing the
  whole limit; the advice says what to change.
- ``other``: no built-in step; plugins may still know one, and an explainer's suggestion is tried last.
"""

import re

# kind -> the built-in steps, in the order they are tried. Priority of a step = 10 x its position.
STEPS: dict[str, tuple[str, ...]] = {
    "out_of_memory": ("offload", "8bit", "4bit"),
    "wont_fit": ("offload", "8bit", "4bit"),
    "crash": ("offload", "8bit", "4bit", "eager_on_rocm"),
    "attention": ("eager",),
    "non_finite": ("eager", "float32"),
    "bf16_unsupported": ("float16", "float32"),
    "missing_package": ("drop_quantization", "drop_placement"),
}

# Kinds after which the search stops at once, without asking any plugin.
STOP_KINDS = ("refused", "files", "timeout")

# Each kind in words, for people.
LABELS = {"out_of_memory": "out of memory", "wont_fit": "will not fit", "attention": "attention or kernel error",
          "non_finite": "NaN or Inf logits", "bf16_unsupported": "bfloat16 not supported", "missing_package":
          "a package is missing", "refused": "a refused setting", "crash": "the worker crashed",
          "timeout": "timed out", "files": "files not available", "other": "unclassified failure"}

CRASH_LIMIT = 2

# Kinds answered by the same ladder: after a newer failure of the family, the older one's alternatives are
# dropped (the newer config already carries that ladder's steps).
FAMILIES = {"out_of_memory": "memory", "wont_fit": "memory", "crash": "memory"}

# The priority of an explainer's own suggestion (Failure.suggestion): after every rule's steps.
SUGGESTION_PRIORITY = 90

# Settings only the user may turn on: a candidate that turns one on is never tried.
USER_ONLY = ("trust_remote_code", "allow_pickle_weights")

# What to tell people when the search ends on a failure of this kind and nothing is left to try.
ADVICE = {
    "out_of_memory": "Nothing left that needs less memory: free memory (other loaded models), give the worker more "
                     "(MODELHUB_WORKER_MEMORY_LIMIT), or use a smaller model.",
    "wont_fit": "Preflight says no remaining config fits here: free memory, or use a smaller model.",
    "crash": "The worker keeps dying without an error: see the worker's log (dmesg shows the kernel's OOM killer; "
             "'Memory access fault by GPU node' is a GPU kernel fault).",
    "attention": "Eager attention did not help either: the GPU kernels do not work with this torch build "
                 "(on ROCm, check that torch is built for this GPU's gfx architecture).",
    "non_finite": "The model gives NaN or Inf logits with every config tried: the checkpoint may be damaged.",
    "bf16_unsupported": "No dtype left to try.",
    "missing_package": "Install the missing package and try again.",
    "refused": "A setting was refused; only the user can allow it (see the cause).",
    "files": "The model's files are not on this machine: download them, then try again.",
    "timeout": "The load ran past the time limit; a try would most likely hang again. Raise MODELHUB_LOAD_TIMEOUT, "
               "or look for swapping (a config that needs less memory may help).",
    "other": "The cause is not one auto-configure knows how to fix.",
}


def priority(kind: str, step: str) -> int | None:
    """The priority of a built-in step after a failure of this kind, or None when the step does not apply."""
    steps = STEPS.get(kind, ())
    return 10 * (steps.index(step) + 1) if step in steps else None


def steps_for(kind: str, owned: tuple[str, ...]) -> list[tuple[str, int]]:
    """The steps of ``owned`` (one plugin's) that follow a failure of this kind, with their priorities."""
    return [(step, 10 * (index + 1)) for index, step in enumerate(STEPS.get(kind, ())) if step in owned]


def package_name(package: str | None) -> str | None:
    """The distribution name in what a failure says is missing: "bitsandbytes==0.50.2" -> "bitsandbytes"."""
    if not package:
        return None
    return re.split(r"[=<>!~\[ ,;]", package.strip().strip("'\""), maxsplit=1)[0].lower() or None


def is_installed(environment: dict, name: str) -> bool:
    """Whether the last worker found the package; unknown (no facts yet) counts as installed: a try tells."""
    packages = environment.get("packages")
    if not isinstance(packages, dict) or name not in packages:
        return True
    return packages[name] is not None
