"""The verdict from the devices' needs and the plan's problems, and the configs that would fit instead.

fits: every device has at least ``TIGHT`` headroom; tight: one has less; wont_fit: one needs more than
it has; cannot_load: a package is missing, a setting is refused or the device lacks a capability.
"""

from modelhub.preflight.estimate import gib

TIGHT = 0.10  # under 10% headroom is a tight fit (hf-mem's threshold)


def headroom(needed: int, available: int | None) -> float | None:
    if not available:
        return None
    return round((available - needed) / available, 4)


def judge(devices: list, problems: list[dict]) -> tuple[str, str]:
    """(verdict, reason) for placed devices (``devices.Device``) and the plan's problems."""
    if problems:
        return "cannot_load", problems[0]["message"]
    worst = None
    for device in devices:
        room = headroom(device.needed, device.available)
        if room is not None and (worst is None or room < worst[0]):
            worst = (room, device)
    unknown = [device for device in devices if device.available is None and device.needed]
    if worst is not None and worst[0] < 0:
        room, device = worst
        return "wont_fit", (f"Needs {gib(device.needed)} of {device.label} ({gib(device.available)} available): "
                            f"{gib(device.needed - device.available)} too much.")
    if unknown or worst is None:
        device = unknown[0] if unknown else devices[0]
        return "unknown", f"Needs about {gib(device.needed)} of {device.label}, whose free memory is not known here."
    room, device = worst
    figures = f"{gib(device.needed)} of {device.label} ({gib(device.available)} available)"
    if room < TIGHT:
        return "tight", f"Needs {figures}: only {room * 100:.0f}% headroom."
    return "fits", f"Needs {figures}: {room * 100:.0f}% headroom."


def candidates(load_config: dict, plan_dict: dict, problems: list[dict], host: dict, ram_budget: int | None) -> list[tuple[dict, str]]:
    """Configs to try instead, in the order auto-configure tries them: a refusal's own suggestion; then
    spreading with max_memory (the rest offloaded to CPU/disk); then 8-bit; then 4-bit."""
    found = []
    for problem in problems:
        if problem.get("suggestion"):
            found.append((_merged(load_config, problem["suggestion"]), _instead(problem)))
    gpus = host.get("gpus") or []
    budgets = {}
    for gpu in gpus:
        if gpu.get("free_bytes"):
            budgets[str(gpu.get("index", 0))] = f"{int(gpu['free_bytes'] * 0.85) // 2**20}MiB"
    if ram_budget and ram_budget > 0:
        budgets["cpu"] = f"{ram_budget // 2**20}MiB"
    if budgets and not plan_dict.get("spread"):
        where = "the GPU and CPU RAM" if gpus else "CPU RAM"
        found.append((_merged(load_config, {"device_map": "auto", "max_memory": budgets}),
                      f"spread within {where} with max_memory; the rest is offloaded to disk (slower)"))
    if not plan_dict.get("quantization"):
        found.append((_merged(load_config, {"quantization_config": {"load_in_8bit": True}}),
                      "8-bit weights (bitsandbytes): about half of 16-bit"))
    if plan_dict.get("quantization") in (None, "bnb_8bit"):
        found.append((_merged(load_config, {"quantization_config": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}}),
                      "4-bit weights (bitsandbytes nf4): about a quarter of 16-bit"))
    return found


def _merged(load_config: dict, changes: dict) -> dict:
    """``changes`` over ``load_config``; None removes a key. The legacy top-level bitsandbytes keys give
    way to a new quantization_config (the two would contradict each other)."""
    merged = dict(load_config)
    if "quantization_config" in changes:
        for key in ("load_in_8bit", "load_in_4bit"):
            merged.pop(key, None)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _instead(problem: dict) -> str:
    if problem["kind"] == "missing_package":
        return f"without what needs {problem['package']} (not installed here)"
    return f"as the refusal suggests ({problem['message']})"
