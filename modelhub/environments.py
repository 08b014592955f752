"""The environment a model is loaded in, and its fingerprint: what makes a result true *here*.

A result learned on a CUDA laptop says nothing about a ROCm desktop sharing the same registry, and a
load that worked with transformers 5.24 may fail with 5.25. So every load attempt and measurement
records the environment it ran in: the host, its accelerator (vendor, architecture — CUDA compute
capability or ROCm ``gfx`` target — and driver), the torch runtime (CUDA / ROCm build), WSL, the OS, and
the versions of the libraries a load goes through. Each distinct set of those facts is one row of the
``environment`` table, named by a digest of the facts (the fingerprint).

The facts are read without importing torch (the web process never does): library versions from package
metadata, the accelerator from the kernel's files (``/proc/driver/nvidia``, ``/sys/class/kfd``) and, when
nvidia-ml-py is installed, NVML. They are read once per process: upgrading a library or a driver means
restarting modelhub, which then sees a new fingerprint.
"""

import hashlib
import importlib.metadata
import json
import platform
import socket
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from modelhub.extensions import db
from modelhub.models import Environment, utcnow

# The libraries whose version changes what a load does; a new version of any is a new environment.
LIBRARIES = ("torch", "transformers", "accelerate", "bitsandbytes", "optimum", "gptqmodel", "gguf", "modelhub")
# Facts shown but left out of the fingerprint: a kernel update (frequent under WSL) does not change
# how a model loads, and the OS's own name is only there to help a user tell hosts apart.
NOT_IDENTITY = ("kernel", "os_name")

_lock = threading.Lock()
CACHE = "modelhub.environment"  # app.extensions[CACHE]: {fingerprint: environment id}


def host_name(config) -> str:
    """This host's name in a shared registry: ``MODELHUB_HOST_NAME``, else the machine's host name."""
    return config.get("MODELHUB_HOST_NAME") or socket.gethostname()


def read_facts(host: str) -> dict:
    """Everything the fingerprint is made of, read now."""
    return {
        "host": host,
        "os": platform.system(),
        "os_name": _os_name(),
        "kernel": platform.release(),
        "wsl": is_wsl(),
        "python": ".".join(platform.python_version_tuple()[:2]),
        "accelerator": read_accelerator(),
        "runtime": torch_runtime(),
        "libraries": library_versions(),
    }


def fingerprint(facts: dict) -> str:
    """A digest of the facts that change how a model loads (``NOT_IDENTITY`` left out)."""
    identity = {key: value for key, value in facts.items() if key not in NOT_IDENTITY}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def current_id(app) -> int:
    """The id of this app's environment, registered in the database the first time it is asked for
    (one short transaction of its own; processes with the same facts share one row). The facts are
    read once per app."""
    with _lock:
        known = app.extensions.setdefault(CACHE, {})
        if "id" in known:
            return known["id"]
    # Registered outside the lock: with the database busy, requests waiting on the lock would each wait
    # out the busy timeout in turn (a second load answered its 503 after two timeouts, not one). Two
    # registrations at once are harmless: they find or insert the same row. One that read the facts
    # before ``forget_cached`` is not kept: it would be the old environment's.
    facts = read_facts(host_name(app.config))
    registered = _register(facts, fingerprint(facts))
    with _lock:
        if app.extensions.get(CACHE) is known:
            return known.setdefault("id", registered)
    return current_id(app)


def current(app) -> Environment:
    return db.session.get(Environment, current_id(app))


def forget_cached(app) -> None:
    """Read the facts again at the next ``current_id`` (tests simulating an upgrade; a restart does)."""
    with _lock:
        app.extensions.pop(CACHE, None)


def _register(facts: dict, digest: str) -> int:
    with db.engine.begin() as connection:  # its own transaction: never part of a request's
        found = connection.execute(select(Environment.id).where(Environment.fingerprint == digest)).scalar()
        if found is not None:
            connection.execute(Environment.__table__.update().where(Environment.id == found).values(last_seen_at=utcnow()))
            return found
    try:
        with db.engine.begin() as connection:
            now = utcnow()
            return connection.execute(Environment.__table__.insert().values(
                fingerprint=digest, host=facts["host"], facts=facts, first_seen_at=now, last_seen_at=now,
            )).inserted_primary_key[0]
    except IntegrityError:  # another process registered the same facts just now
        with db.engine.connect() as connection:
            return connection.execute(select(Environment.id).where(Environment.fingerprint == digest)).scalar_one()


def library_versions() -> dict:
    return {name: _version(name) for name in LIBRARIES}


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def torch_runtime() -> str | None:
    """The accelerator runtime torch was built for, from its version's local part: ``cu124``,
    ``rocm6.2``, ``cpu`` (None: no torch; "default" for a build without a local part, e.g. from PyPI)."""
    version = _version("torch")
    if version is None:
        return None
    return version.partition("+")[2] or "default"


def is_wsl() -> bool:
    return "microsoft" in _read("/proc/version").lower()


def read_accelerator() -> dict:
    """The GPUs the kernel reports: NVIDIA's driver files (and NVML for compute capabilities), or the
    AMD kernel driver's topology (``gfx`` targets). Empty when there is none (or none visible)."""
    return _nvidia() or _amd() or {"vendor": None}


def _nvidia() -> dict | None:
    driver_text = _read("/proc/driver/nvidia/version")
    devices = []
    for information in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        model = next((line.split(":", 1)[1].strip() for line in _read(information).splitlines()
                      if line.startswith("Model:")), "NVIDIA GPU")
        devices.append({"name": model})
    nvml = _nvml()
    if nvml:
        devices = nvml["devices"]
    if not driver_text and not devices:
        return None
    driver = nvml.get("driver") if nvml else None
    if driver is None and "Kernel Module" in driver_text:
        driver = driver_text.split("Kernel Module", 1)[1].split()[0]
    return {"vendor": "nvidia", "devices": devices, "driver": driver}


def _nvml() -> dict | None:
    """Compute capabilities and the driver through NVML (nvidia-ml-py), when installed and working
    (it also answers under WSL, where /proc/driver/nvidia does not exist)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            devices = []
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                name = pynvml.nvmlDeviceGetName(handle)
                devices.append({"name": name.decode() if isinstance(name, bytes) else name,
                                "architecture": f"sm_{major}{minor}"})
            driver = pynvml.nvmlSystemGetDriverVersion()
            return {"devices": devices, "driver": driver.decode() if isinstance(driver, bytes) else driver}
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVIDIA driver (the library loads, NVML does not)
        return None


def _amd() -> dict | None:
    devices = []
    for properties in sorted(Path("/sys/class/kfd/kfd/topology/nodes").glob("*/properties")):
        values = dict(line.split(None, 1) for line in _read(properties).splitlines() if " " in line)
        target = int(values.get("gfx_target_version", "0") or 0)
        if target:  # 0: a CPU node
            devices.append({"name": _read(properties.parent / "name").strip() or "AMD GPU",
                            "architecture": gfx_name(target)})
    if not devices:
        return None
    driver = _read("/sys/module/amdgpu/version").strip() or None
    rocm = _read("/opt/rocm/.info/version").strip() or None
    return {"vendor": "amd", "devices": devices, "driver": driver, "rocm": rocm}


def gfx_name(target_version: int) -> str:
    """The kernel's ``gfx_target_version`` (e.g. 110000, 90010) as ROCm names it (gfx1100, gfx90a)."""
    major, minor, stepping = target_version // 10000, (target_version // 100) % 100, target_version % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def _os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def _read(path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def describe(environment: Environment | None) -> str:
    """One line a person reads: "gpu-box · NVIDIA H100 (sm_90) · cu124 · transformers 5.24.0"."""
    if environment is None:
        return "recorded before environments were"
    facts = environment.facts or {}
    accelerator = facts.get("accelerator") or {}
    devices = accelerator.get("devices") or []
    if devices:
        first = devices[0]
        gpu = first.get("name", "GPU") + (f" ({first['architecture']})" if first.get("architecture") else "")
        gpu += f" ×{len(devices)}" if len(devices) > 1 else ""
    else:
        gpu = "CPU only"
    parts = [environment.host, gpu + (" under WSL" if facts.get("wsl") else "")]
    if facts.get("runtime") and (devices or facts["runtime"] not in ("cpu", "default")):
        parts.append(facts["runtime"])  # "cu124", "rocm6.2"; a CPU build says nothing "CPU only" does not
    transformers = (facts.get("libraries") or {}).get("transformers")
    if transformers:
        parts.append(f"transformers {transformers}")
    return " · ".join(parts)
