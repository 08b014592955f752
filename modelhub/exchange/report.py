"""A single model's compatibility report: the load_config that loaded it, and the machine it loaded on.

Written from the model's latest successful load attempt (a report of a config nobody saw work would
not be worth sharing). Importing one on another machine registers the model if needed, offers the
load_config under the usual merge rules, and adds one line to the notes saying where it was proven;
the status is left alone: it was proven there, not here (load it to find out).
"""

from sqlalchemy import select

from modelhub.exceptions import NoProof
from modelhub.exchange.schemas import REPORT_FORMAT, REPORT_VERSION, CompatibilityReport
from modelhub.extensions import db
from modelhub.models import LoadAttempt, Measurement, ModelRegistry

_REPORT = CompatibilityReport()


def proof(model: ModelRegistry) -> LoadAttempt | None:
    """The model's latest successful load attempt."""
    return db.session.scalar(
        select(LoadAttempt).where(LoadAttempt.model_id == model.id, LoadAttempt.outcome == "success")
        .order_by(LoadAttempt.id.desc()).limit(1)
    )


def build_report(model: ModelRegistry) -> dict:
    attempt = proof(model)
    if attempt is None:
        raise NoProof(model.model_name)
    measured = db.session.scalar(
        select(Measurement).where(Measurement.model_id == model.id, Measurement.outcome == "success",
                                  Measurement.load_config.is_(None) if attempt.load_config is None
                                  else Measurement.load_config == attempt.load_config)
        .order_by(Measurement.id.desc()).limit(1)
    )
    return _REPORT.dump({
        "format": REPORT_FORMAT, "version": REPORT_VERSION, "model_name": model.model_name, "hf_path": model.hf_path,
        "quantization": model.quantization, "load_config": attempt.load_config,
        "compatibility_status": model.compatibility_status, "proven_on": attempt, "measured": measured,
    })


def report_entry(report: dict) -> dict:
    """A validated report as a model entry for the merge (see merge.py): the name, the path, the
    quantization and load_config when set, and the notes line to add."""
    entry = {"model_name": report["model_name"], "hf_path": report["hf_path"], "append_notes": notes_line(report)}
    for name in ("quantization", "load_config"):
        if report.get(name) is not None:
            entry[name] = report[name]
    return entry


def notes_line(report: dict) -> str:
    proven = report["proven_on"]
    when = (proven.get("finished_at") or proven["started_at"]).strftime("%Y-%m-%d")
    config = "this load config" if report.get("load_config") else "the default settings"
    return (f"Compatibility report: {report['model_name']} loaded with {config} on {when} "
            f"({environment_summary(proven.get('environment') or {})}).")


def environment_summary(environment: dict) -> str:
    """``torch 2.13.0, transformers 5.24.0, CUDA 12.4, NVIDIA RTX 4090 (24 GiB), WSL`` — the facts a
    reader compares with their own machine."""
    parts = [f"{name} {environment[name]}" for name in ("torch", "transformers") if environment.get(name)]
    if environment.get("rocm"):
        parts.append(f"ROCm {environment['rocm']}")
    elif environment.get("cuda"):
        parts.append(f"CUDA {environment['cuda']}")
    gpus = [gpu for gpu in environment.get("gpus") or [] if isinstance(gpu, dict)]
    for gpu in gpus:
        memory = gpu.get("memory_bytes")
        size = f" ({memory / 2**30:.0f} GiB)" if isinstance(memory, (int, float)) and memory else ""
        parts.append(f"{gpu.get('name', 'GPU')}{size}")
    if not gpus:
        parts.append("no GPU")
    if environment.get("wsl"):
        parts.append("WSL")
    return ", ".join(str(part) for part in parts)
