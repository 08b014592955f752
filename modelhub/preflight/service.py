"""Preflight's three operations: ``check`` (the full answer, for the API, the CLI and the modal),
``marks`` (a verdict per card, fast) and ``predict_peak`` (what a run stores at its start, to calibrate
against its measured peak). Reads metadata only; never imports torch or transformers."""

import json
import logging
import os

from modelhub.loading.copy_read import copy_read
from modelhub.loading import copies
from modelhub.preflight import calibration, checkpoint as checkpoints, estimate, host as host_facts, planner, verdict
from modelhub.preflight.devices import Inputs, place
from modelhub.preflight.estimate import Term, gib

log = logging.getLogger(__name__)
DEFAULT_CONTEXT = 2048
PLUGINS = "modelhub.plugins"
HOST_KEYS = ("ram_available_bytes", "ram_total_bytes", "memory_limit_bytes", "gpus", "source")


class _Evaluation:
    """One config judged on this host: its plan, devices, totals, calibration and verdict."""

    def __init__(self, app, row, load_config: dict, context: int, prompt_tokens: int, host: dict, checkpoint):
        info = planner.model_info(row, checkpoint)
        self.plan = planner.make_plan(app.extensions[PLUGINS], info, load_config, host, checkpoint)
        self.context = _bounded_context(checkpoint, context)
        overhead, overhead_detail = _overhead(host)
        inputs = Inputs(checkpoint=checkpoint, context=self.context, prompt_tokens=min(prompt_tokens, self.context),
                        overhead=overhead, overhead_detail=overhead_detail, ram_available=host_facts.ram_available(host),
                        gpus=host.get("gpus") or [], disk_free=None)
        if self.plan.spread and self.plan.offload_to_disk:
            inputs.disk_free = host_facts.disk_free(self.plan.offload_folder or host.get("offload_dir"))
        self.devices = place(self.plan, inputs)
        self.raw_host = self._cpu().needed
        self.calibration = calibration.learn(host.get("recent_attempts") or [], self.plan.kind)
        if self.calibration:
            cpu = self._cpu()
            base = sum(term.bytes for term in cpu.terms if term.name in ("weights", "overhead"))
            factor = self.calibration["factor"]
            cpu.terms.append(Term("cpu", "calibration", int(base * (factor - 1)),
                                  f"x{factor:.3f} on weights and overhead: the median measured/predicted peak, "
                                  f"{self.calibration['text']}"))
        self.verdict, self.reason = verdict.judge(self.devices, self.plan.problems)

    def _cpu(self):
        return next(device for device in self.devices if device.device == "cpu")

    @property
    def total(self) -> int:
        return sum(device.needed for device in self.devices if device.device != "disk")

    @property
    def raw_total(self) -> int:
        return self.total - sum(t.bytes for d in self.devices for t in d.terms if t.name == "calibration")


def _bounded_context(checkpoint, context: int) -> int:
    limit = checkpoint.text_config.get("max_position_embeddings") or checkpoint.text_config.get("n_positions")
    return min(context, limit) if isinstance(limit, int) and limit > 0 else context


def _overhead(host: dict) -> tuple[int, str]:
    """The worker before any weight (measured by this host's newest load, else a typical figure), plus
    what loading any model adds before its weights: its code, its skeleton, the tokenizer."""
    measured = host.get("baseline_rss_bytes")
    baseline = int(measured) if measured else estimate.DEFAULT_OVERHEAD
    source = "measured by this host's newest load" if measured else "a typical figure until a load here measures it"
    return baseline + estimate.LOAD_MACHINERY, (f"the worker before any weight ({gib(baseline)}: Python, torch, "
                                                f"transformers, plugins; {source}) + the model's code, skeleton and "
                                                f"tokenizer ({gib(estimate.LOAD_MACHINERY)})")


def _saved_config(row) -> dict:
    try:
        config = json.loads(row.load_config) if row.load_config else {}
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def check(app, model_row, load_config: dict | None = None, context_tokens: int | None = None, *,
          host: dict | None = None, copy_id: int | None = None) -> dict:
    """Will ``model_row`` load here with ``load_config`` (None: its saved one)? See docs/preflight in
    the API for the shape. ``host`` replaces this host's facts (tests, what-if). ``copy_id``: which of
    the model's copies to check (default its cache_path, as a load reads); an id that is none of its
    copies raises UnknownCopy, a copy the latest scan did not find CopyMissing, before anything is read."""
    path = copies.chosen_path(model_row, copy_id)
    config = _saved_config(model_row) if load_config is None else dict(load_config)
    host = host if host is not None else host_facts.facts(app)
    context = int(context_tokens or DEFAULT_CONTEXT)
    answer = {"model_name": model_row.model_name, "load_config": config,
              "config_source": "saved" if load_config is None else "given", "context_tokens": context,
              "copy": _copy_checked(model_row, path),
              "verdict": "unknown", "reason": None, "devices": [], "total_bytes": None, "raw_total_bytes": None,
              "calibration": None, "problems": [], "fitting_config": None, "fitting_reason": None, "notes": [],
              "metadata": None, "host": {key: host.get(key) for key in HOST_KEYS}}
    try:
        checkpoint = _read(model_row, path, chosen=copy_id is not None)
    except checkpoints.NoCheckpoint as error:
        answer["reason"] = str(error)
        return answer
    if path is None or not os.path.exists(path):  # the hub cache's snapshot, found in place of a cache_path
        answer["copy"] = _copy_checked(model_row, checkpoint.directory)
    answer["metadata"] = _metadata(checkpoint)
    evaluation = _Evaluation(app, model_row, config, context, context, host, checkpoint)
    answer.update(_describe(evaluation))
    if evaluation.verdict in ("wont_fit", "cannot_load"):
        answer["fitting_config"], answer["fitting_reason"] = _fitting(app, model_row, config, evaluation, host, checkpoint)
    return answer


def _copy_checked(model_row, path: str | None) -> dict | None:
    found = copy_read(model_row.id, path)
    return found.as_dict() if found is not None else None


def _read(model_row, path: str | None, *, chosen: bool):
    """The checkpoint at ``path``. The model's own cache_path falls back to the hub cache's snapshot, as
    the worker's does; a copy asked for by its id is that copy or nothing (a check of other files would
    answer for the wrong copy)."""
    if chosen and not os.path.exists(path):
        raise checkpoints.NoCheckpoint(f"The copy asked for is not on disk now ({path}): deleted or moved since "
                                       "the latest scan, or its disk is not mounted. Scan again, or check another "
                                       "copy.")
    return checkpoints.read(path, model_row.hf_path)


def _describe(evaluation: _Evaluation) -> dict:
    return {
        "context_tokens": evaluation.context, "verdict": evaluation.verdict, "reason": evaluation.reason,
        "devices": [{"device": device.device, "label": device.label, "needed_bytes": device.needed,
                     "available_bytes": device.available,
                     "headroom": verdict.headroom(device.needed, device.available),
                     "terms": [term.as_dict() for term in device.terms]} for device in evaluation.devices],
        "total_bytes": evaluation.total, "raw_total_bytes": evaluation.raw_total,
        "calibration": evaluation.calibration,
        "problems": [{"kind": p["kind"], "message": p["message"], "package": p.get("package")}
                     for p in evaluation.plan.problems],
        "notes": list(evaluation.plan.notes),
    }


def _metadata(checkpoint) -> dict:
    return {"parameters": checkpoint.parameters, "weights_bytes": checkpoint.stored_bytes, "dtype": checkpoint.dtype,
            "quantization": checkpoint.quantization, "shards": checkpoint.shards,
            "source": f"{checkpoint.source}: {checkpoint.gguf['file'] if checkpoint.gguf else checkpoint.directory}"}


def _fitting(app, row, config: dict, evaluation: _Evaluation, host: dict, checkpoint) -> tuple[dict | None, str | None]:
    """The first candidate that fits (else the first tight one), judged exactly as the config was."""
    cpu = evaluation._cpu()
    fixed = sum(term.bytes for term in cpu.terms if term.name != "weights")
    available = host_facts.ram_available(host)
    ram_budget = int((available - fixed) * 0.85) if available else None
    tight = None
    for candidate, why in verdict.candidates(config, evaluation.plan.as_dict(), evaluation.plan.problems, host, ram_budget):
        if candidate == config:
            continue
        tried = _Evaluation(app, row, candidate, evaluation.context, evaluation.context, host, checkpoint)
        if tried.verdict == "fits":
            return candidate, f"{why}. {tried.reason}"
        if tried.verdict == "tight" and tight is None:
            tight = (candidate, f"{why}, a tight fit. {tried.reason}")
    return tight or (None, None)


def marks(app, model_rows) -> dict[int, dict]:
    """``{model id: {"verdict", "reason"}}`` for a page of cards: the saved config at the default context,
    no search for a fitting config. Headers and this host's facts are cached, so it stays fast."""
    host = host_facts.facts(app)
    found = {}
    for row in model_rows:
        try:
            checkpoint = checkpoints.read(row.cache_path, row.hf_path)
            evaluation = _Evaluation(app, row, _saved_config(row), DEFAULT_CONTEXT, DEFAULT_CONTEXT, host, checkpoint)
            found[row.id] = {"verdict": evaluation.verdict, "reason": evaluation.reason}
        except checkpoints.NoCheckpoint as error:
            found[row.id] = {"verdict": "unknown", "reason": str(error)}
        except Exception as error:  # noqa: BLE001 - a card without a mark beats a page that fails
            log.warning("preflight mark for %s failed: %s", getattr(row, "model_name", row), error)
            found[row.id] = {"verdict": "unknown", "reason": f"Preflight failed: {type(error).__name__}"}
    return found


def predict_peak(app, model_row, load_config: dict | None, *, copy_path: str | None = None) -> dict | None:
    """What a run stores as ``predicted_peak`` when it begins: the host and GPU peaks of the load and
    its smoke test (calibrated, and raw for calibrating), the verdict and the plan. ``copy_path``: the
    copy the run loads (default the model's cache_path). Never raises."""
    try:
        config = _saved_config(model_row) if load_config is None else dict(load_config)
        host = host_facts.facts(app)
        checkpoint = checkpoints.read(copy_path or model_row.cache_path, model_row.hf_path)
        evaluation = _Evaluation(app, model_row, config, estimate.SMOKE_CONTEXT, estimate.SMOKE_PROMPT_TOKENS,
                                 host, checkpoint)
        gpus = [device.needed for device in evaluation.devices if device.device.startswith("gpu")]
        return {"host_bytes": evaluation._cpu().needed, "gpu_bytes": sum(gpus) if gpus else None,
                "raw_host_bytes": evaluation.raw_host, "verdict": evaluation.verdict,
                "plan": evaluation.plan.as_dict()}
    except Exception as error:  # noqa: BLE001 - a run starts whatever preflight thinks of it
        if not isinstance(error, checkpoints.NoCheckpoint):
            log.warning("preflight could not predict %s's peak: %s", getattr(model_row, "model_name", "?"), error)
        return None
