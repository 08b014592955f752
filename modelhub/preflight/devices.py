"""Where each term of a load's memory goes: one device (the CPU, or one GPU), or spread by accelerate
over the GPUs, the CPU and disk within the plan's budgets (``device_map="auto"`` + ``max_memory``)."""

from dataclasses import dataclass, field

from modelhub.preflight import estimate
from modelhub.preflight.checkpoint import Checkpoint
from modelhub.preflight.estimate import Term, gib
from modelhub.preflight.plan import LoadPlan


@dataclass
class Device:
    device: str  # "cpu", "gpu0", "disk"
    label: str
    available: int | None  # None: not known (the verdict says so)
    terms: list[Term] = field(default_factory=list)

    @property
    def needed(self) -> int:
        return sum(term.bytes for term in self.terms)


@dataclass
class Inputs:
    """What placing needs besides the plan: the checkpoint, the context, this host's figures."""

    checkpoint: Checkpoint
    context: int
    prompt_tokens: int
    overhead: int
    overhead_detail: str
    ram_available: int | None
    gpus: list[dict]
    disk_free: int | None


def place(plan: LoadPlan, inputs: Inputs) -> list[Device]:
    checkpoint = inputs.checkpoint
    loaded = estimate.weights(plan, checkpoint)
    weights, how = loaded.resident, loaded.how
    shape = estimate.architecture(checkpoint)
    dtype = estimate.compute_dtype(plan, checkpoint)
    kv, kv_how = estimate.kv_cache(shape, inputs.context, dtype)
    act, act_how = estimate.activations(shape, inputs.context, inputs.prompt_tokens, dtype, plan.attn_implementation)
    cpu = Device("cpu", "CPU RAM", inputs.ram_available)
    devices = {"cpu": cpu}
    for gpu in inputs.gpus:
        name = f"gpu{gpu.get('index', 0)}"
        devices[name] = Device(name, f"GPU {gpu.get('index', 0)}: {gpu.get('name') or 'GPU'}", gpu.get("free_bytes"))
    cpu.terms.append(Term("cpu", "overhead", inputs.overhead, inputs.overhead_detail))
    if plan.spread:
        compute = _spread(plan, inputs, devices, weights, how)
    else:
        compute = devices.get(plan.device)
        if compute is None:  # a GPU no worker here has described yet: its memory is unknown
            compute = devices[plan.device] = Device(plan.device, f"GPU {plan.device[3:]} (not described yet: load "
                                                    "any model here once)", None)
        if compute is cpu:
            # Loading peaks before generation starts: its transient counts where it exceeds the KV cache
            # and activations, which only exist later.
            beyond = max(0, loaded.transient - kv - act)
            detail = how + (f"; + {gib(beyond)} while loading: {loaded.transient_how}" if loaded.transient
                            else f" ({loaded.transient_how})")
            cpu.terms.append(Term("cpu", "weights", weights + beyond, detail))
        else:
            compute.terms.append(Term(compute.device, "weights", weights, how))
            largest = max(checkpoint.stored_bytes // max(checkpoint.shards, 1), 0)
            cpu.terms.append(Term("cpu", "weights", largest, "one shard's pages mapped while copied to the GPU"))
    compute.terms.append(Term(compute.device, "kv_cache", kv, kv_how))
    compute.terms.append(Term(compute.device, "activations", act, act_how))
    if compute is not cpu:
        compute.terms.append(Term(compute.device, "overhead", estimate.GPU_CONTEXT, "GPU runtime context and kernels"))
    for extra in plan.extra_terms:
        target = devices.get(extra.get("device")) or compute
        target.terms.append(Term(target.device, str(extra.get("name", "extra")), int(extra.get("bytes", 0)),
                                 str(extra.get("detail", ""))))
    return [device for device in devices.values() if device.terms]


def _spread(plan: LoadPlan, inputs: Inputs, devices: dict, weights: int, how: str) -> Device:
    """accelerate fills the GPUs, then the CPU, then disk, each up to its budget (max_memory, else what
    is free); the layers run on the first device holding any. A continuous fill: layers are not split
    in reality, so a device may hold up to one layer less than its budget."""
    order = [name for name in devices if name != "cpu"] + ["cpu"]
    left, compute = weights, None
    for name in order:
        device = devices[name]
        room = plan.budgets.get(name)
        if room is None:
            room = (device.available or 0) - (device.needed if name == "cpu" else 0)
            room = int(room * 0.9)  # accelerate leaves itself a margin
        share = max(0, min(left, room))
        if share:
            device.terms.append(Term(name, "weights", share, f"{gib(share)} of {gib(weights)} ({how})"))
            left -= share
            compute = compute or device
        if not left:
            break
    if left and plan.offload_to_disk:
        disk = devices.setdefault("disk", Device("disk", "Disk (offload folder)", inputs.disk_free))
        disk.terms.append(Term("disk", "weights", left, f"{gib(left)} offloaded to {plan.offload_folder or 'disk'}"))
        layer = _largest_layer(inputs.checkpoint, weights)
        devices["cpu"].terms.append(Term("cpu", "weights", layer, "one offloaded layer, loaded while it runs"))
    elif left:
        devices["cpu"].terms.append(Term("cpu", "weights", left, f"{gib(left)} that no budget leaves room for "
                                         "(no disk offload)"))
    return compute or devices["cpu"]


def _largest_layer(checkpoint: Checkpoint, weights: int) -> int:
    layers = estimate.architecture(checkpoint)["layers"] or 1
    return weights // layers
