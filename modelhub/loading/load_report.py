"""What a load really was, read off the loaded model in the worker: the dtype and attention implementation
transformers used (not the ones asked for), where each part sits (``hf_device_map``: GPU, CPU or disk),
the quantization applied, what transformers reported about the checkpoint's weights, and whether the load
works only in a degraded way (parts offloaded). The result is the attempt's ``load_report``.

Plain Python over the model's attributes: torch is not imported here (the model brings it along).
"""

import logging

log = logging.getLogger(__name__)

LIST_LIMIT = 20  # names kept per list: enough to see what is where, small enough for a JSON column
# device_map strategies under which accelerate chooses the placement itself (a CPU or disk part is then
# what did not fit on the GPU, not what the user asked for).
SPREADING = ("auto", "balanced", "balanced_low_0", "sequential")


def describe(model, loading_info: dict | None, environment: dict, kwargs: dict) -> dict:
    """The load report of a loaded ``model`` (``loading_info``: transformers' ``output_loading_info``,
    or None when the plugin that loaded it did not give one)."""
    placement = _guarded(_placement, model)
    return {
        "model_class": type(model).__name__,
        "dtype": _guarded(lambda m: str(m.dtype).removeprefix("torch."), model),
        "attention": _guarded(lambda m: m.config._attn_implementation, model),
        "placement": placement,
        "quantization": _guarded(_quantization, model),
        "parameters": _guarded(_parameters, model),
        "loading_info": summarize_loading_info(loading_info),
        "degraded_reason": degraded_reason(placement, environment.get("gpus"), kwargs.get("device_map")),
    }


def _guarded(read, model):
    """One fact; an odd model (a plugin's own class) that lacks it leaves it empty, not the load failed."""
    try:
        return read(model)
    except Exception as error:  # noqa: BLE001 - the report describes; it must never break a working load
        log.warning("could not read %s from the loaded model: %s", getattr(read, "__name__", "a fact"), error)
        return None


def _parameters(model) -> int:
    # transformers counts 4-bit weights as the parameters they stand for, not their packed storage
    count = model.num_parameters() if hasattr(model, "num_parameters") else sum(p.numel() for p in model.parameters())
    return int(count)


def device_kind(device) -> str:
    """gpu, cpu or disk, for a device as accelerate's device maps write it (0, "cuda:1", "cpu", "disk")."""
    text = str(device)
    if text in ("cpu", "disk"):
        return text
    if text == "meta":  # parameters accelerate streams in from disk
        return "disk"
    return "gpu"  # an index, cuda:N, xpu:N, mps


def _placement(model) -> dict:
    device_map = getattr(model, "hf_device_map", None)
    if not device_map:
        device = str(model.device)
        kind = device_kind(device)
        return {"device_map": False, "device": device, "counts": {kind: 1}, "modules": {},
                "summary": f"all on {device}"}
    modules: dict[str, list[str]] = {}
    devices: dict[str, int] = {}
    for name, device in device_map.items():
        modules.setdefault(device_kind(device), []).append(name or "(whole model)")
        devices[str(device)] = devices.get(str(device), 0) + 1
    counts = {kind: len(names) for kind, names in modules.items()}
    if len(devices) == 1:
        summary = f"all on {next(iter(devices))}"
    else:
        summary = ", ".join(f"{kind} {count} module{'s' if count != 1 else ''}" for kind, count in counts.items())
    return {"device_map": True, "devices": devices, "counts": counts,
            "modules": {kind: names[:LIST_LIMIT] for kind, names in modules.items()}, "summary": summary}


def _quantization(model) -> dict | None:
    config = getattr(model.config, "quantization_config", None)
    if config is None:
        quantizer = getattr(model, "hf_quantizer", None)
        config = getattr(quantizer, "quantization_config", None)
    if config is None:
        return None
    settings = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    method = settings.get("quant_method")
    method = str(getattr(method, "value", method) or "unknown")
    bits = settings.get("bits") or (8 if settings.get("load_in_8bit") else 4 if settings.get("load_in_4bit") else None)
    summary = f"{method} {bits}-bit" if bits else method
    if settings.get("load_in_4bit") and settings.get("bnb_4bit_quant_type"):
        summary += f" ({settings['bnb_4bit_quant_type']})"
    return {"method": method, "bits": bits, "summary": summary}


def summarize_loading_info(info: dict | None) -> dict | None:
    """transformers' loading info as JSON: each list sorted and cut to LIST_LIMIT, with its full count."""
    if info is None:
        return None
    mismatched = sorted((name, list(checkpoint), list(expected)) for name, checkpoint, expected
                        in info.get("mismatched_keys") or ())
    return {
        "missing": _counted(sorted(info.get("missing_keys") or ())),
        "unexpected": _counted(sorted(info.get("unexpected_keys") or ())),
        "mismatched": _counted([{"key": name, "checkpoint": checkpoint, "model": expected}
                                for name, checkpoint, expected in mismatched]),
        "errors": [str(message)[:500] for message in (info.get("error_msgs") or [])][:LIST_LIMIT],
    }


def _counted(items: list) -> dict:
    return {"count": len(items), "items": items[:LIST_LIMIT]}


def degraded_reason(placement: dict | None, gpus, device_map) -> str | None:
    """A sentence when the load works only with parts offloaded, else None.

    With a GPU here, parts on the CPU or on disk are what did not fit on it; a whole model on the CPU
    because the load_config asked for it (``device_map: "cpu"``) is a choice, not a fallback. Without a
    GPU the CPU is the main device, and only parts on disk count.
    """
    if not placement or not placement.get("device_map"):
        return None  # no device map: nothing was offloaded
    counts, modules = placement["counts"], placement["modules"]
    total = sum(counts.values())
    on_disk, on_cpu = counts.get("disk", 0), counts.get("cpu", 0)
    has_gpu = bool(gpus)
    chose_cpu = not counts.get("gpu") and not on_disk and device_map not in SPREADING
    if has_gpu and on_cpu and not chose_cpu:
        where = f"{on_cpu} of {total} modules on the CPU" + (f" and {on_disk} on disk" if on_disk else "")
        return (f"Works only with parts offloaded: {where} ({_names(modules, 'cpu', 'disk')}), not on the GPU. "
                "It runs much slower than a model that fits on the GPU.")
    if on_disk:
        device = "GPU" if has_gpu else "CPU"
        return (f"Works only with parts offloaded to disk: {on_disk} of {total} modules ({_names(modules, 'disk')}) "
                f"{'is' if on_disk == 1 else 'are'} read from disk as needed, not held in {device} memory. It runs "
                "much slower than a model that fits in memory.")
    return None


def _names(modules: dict, *kinds: str, shown: int = 3) -> str:
    names = [name for kind in kinds for name in modules.get(kind, [])]
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
