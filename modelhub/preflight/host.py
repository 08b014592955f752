"""This host's facts as preflight compares a load with them, read without torch: free RAM (psutil), the
worker memory limit, each GPU (the newest worker's description of it, free memory through nvidia-ml-py
or amdsmi when importable), installed packages (package metadata) and the framework's measured overhead.

Read at most every few seconds per app (a page of cards asks once): memory moves, but a preflight
answer is a forecast, not a meter.
"""

import importlib.metadata
import shutil
from pathlib import Path
import threading
import time

import psutil
from sqlalchemy import select

from modelhub.environments import host_name
from modelhub.extensions import db
from modelhub.models import Environment, LoadAttempt

TTL_SECONDS = 5.0
RECENT_ATTEMPTS = 500  # this host's newest attempts, read once for the GPUs, the overhead and calibration
CACHE = "modelhub.preflight.host"
_lock = threading.Lock()
_versions: dict[str, str | None] = {}


def facts(app) -> dict:
    """This host now (cached for ``TTL_SECONDS``): the dict preflight and the ``plan_load`` hook see."""
    cached = app.extensions.get(CACHE)
    if cached and time.monotonic() - cached[0] < TTL_SECONDS:
        return cached[1]
    recent = recent_attempts(app)
    memory = psutil.virtual_memory()
    environment = next((row["environment"] for row in recent if row["environment"]), None) or {}
    found = {
        "ram_available_bytes": int(memory.available), "ram_total_bytes": int(memory.total),
        "memory_limit_bytes": app.config.get("MODELHUB_WORKER_MEMORY_LIMIT"),
        "gpus": _gpus(environment.get("gpus") or []),
        "gpus_known": isinstance(environment.get("gpus"), list),  # a worker here described the machine
        "rocm": environment.get("rocm"), "cuda": environment.get("cuda"), "wsl": environment.get("wsl"),
        "packages": {},  # filled on demand by installed(): metadata lookups cost ~0.1 ms each
        "baseline_rss_bytes": next((row["measured_peak"].get("host_baseline_rss_bytes") for row in recent
                                    if (row["measured_peak"] or {}).get("host_baseline_rss_bytes")), None),
        "offload_dir": app.config.get("MODELHUB_HOME"),
        "recent_attempts": recent,
        "source": "psutil" + (", the newest worker's GPU facts" if environment.get("gpus") else "")
                  + (", MODELHUB_WORKER_MEMORY_LIMIT" if app.config.get("MODELHUB_WORKER_MEMORY_LIMIT") else ""),
    }
    with _lock:
        app.extensions[CACHE] = (time.monotonic(), found)
    return found


def forget(app) -> None:
    """Read the host again at the next preflight (a run just ended: new facts, new calibration)."""
    app.extensions.pop(CACHE, None)


def ram_available(host: dict) -> int | None:
    """What a worker may use: the free RAM, or the worker memory limit when it is smaller."""
    values = [value for value in (host.get("ram_available_bytes"), host.get("memory_limit_bytes")) if value]
    return min(values) if values else None


def installed(host: dict, package: str) -> str | None:
    """The installed version of ``package`` (None: missing). Facts passed in win (tests, other hosts)."""
    packages = host.get("packages") or {}
    if package in packages:
        return packages[package]
    if package not in _versions:
        try:
            _versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            _versions[package] = None
    return _versions[package]


def disk_free(path: str | None) -> int | None:
    """Free space where offloaded weights go: the offload folder, or (not created yet: a worker makes it
    at its first offload) the nearest folder above it that exists."""
    folder = Path(path or ".").absolute()
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def recent_attempts(app) -> list[dict]:
    """This host's newest finished load attempts (one query): environment, predicted and measured peaks."""
    query = (select(LoadAttempt.environment, LoadAttempt.predicted_peak, LoadAttempt.measured_peak,
                    LoadAttempt.outcome)
             .join(Environment, Environment.id == LoadAttempt.environment_id)
             .where(Environment.host == host_name(app.config), LoadAttempt.outcome != "running")
             .order_by(LoadAttempt.id.desc()).limit(RECENT_ATTEMPTS))
    return [{"environment": row.environment if isinstance(row.environment, dict) else None,
             "predicted_peak": row.predicted_peak if isinstance(row.predicted_peak, dict) else None,
             "measured_peak": row.measured_peak if isinstance(row.measured_peak, dict) else None,
             "outcome": row.outcome} for row in db.session.execute(query)]


def _gpus(described: list[dict]) -> list[dict]:
    """The worker's GPUs, with free memory where a management library answers (else the total)."""
    free = _nvml_free() if described else {}
    gpus = []
    for gpu in described:
        index = gpu.get("index", len(gpus))
        total = gpu.get("memory_bytes")
        gpus.append({"index": index, "name": gpu.get("name"), "architecture": gpu.get("architecture"),
                     "memory_bytes": total, "free_bytes": free.get(index, total),
                     "free_source": "nvidia-ml-py" if index in free else "total (free memory not readable)"})
    return gpus


def _nvml_free() -> dict[int, int]:
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        try:
            return {index: int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).free)
                    for index in range(pynvml.nvmlDeviceGetCount())}
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - the library loads, the driver does not answer
        return {}
