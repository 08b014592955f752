"""The API's schemas for hosts sharing a registry (jobs asked of another host), this host's Retest, and the
copy of a model's files a result read (modelhub/loading/copy_read.py: a preflight's copy, each row of where
a model loads)."""

from marshmallow import Schema, fields, validate

from modelhub import models as m
from modelhub.fields import Choice, StrictInteger, Text, UtcDateTime
from modelhub.discovery.schemas import library
from modelhub.schemas import LoadRequestSchema, cache_location


def host_job_state(**kwargs) -> Choice:
    return Choice(m.HOST_JOB_STATES, component="HostJobState", **kwargs)


def copy_id(**kwargs) -> StrictInteger:
    """The copy a load or a measurement reads (modelhub/loading/copies.py)."""
    return StrictInteger(validate=validate.Range(min=1), metadata={
        "description": "Which copy of the model's files to load: one of the ids of GET /api/models/{name}/copies "
                       "(a folder, or a GGUF file). Default: the model's cache_path (its primary copy). Another "
                       "model's copy, or an unknown id, is a 409 naming the model's copies; so is a copy the latest "
                       "scan did not find."}, **kwargs)


class StartLoadSchema(LoadRequestSchema):
    """``POST /api/models/{name}/load``: a load here, or asked of another host (a benchmark, which shares
    LoadRequest's options, runs here only)."""

    host = Text(max_length=255, validate=validate.Length(min=1), metadata={
        "description": "Load it on another host sharing this registry (GET /api/hosts): answered 202 with a "
                       "queued job (GET /api/host-jobs/{id}) that host's modelhub picks up. Absent, or this "
                       "host's own name: loaded here."})
    copy_id = copy_id()


class HostSchema(Schema):
    """A host that has used this registry, with its newest environment."""

    host = fields.String(metadata={"description": "Its name (MODELHUB_HOST_NAME, else the machine's host name)."})
    this_host = fields.Boolean(metadata={"description": "True for the host answering this request."})
    environment_id = fields.Integer(metadata={"description": "Its newest environment (fingerprint row)."})
    fingerprint = fields.String()
    description = fields.String(metadata={"description": "Its accelerator, runtime and transformers, in one line."})
    last_seen_at = UtcDateTime(metadata={
        "description": "When its modelhub was last seen running (renewed every 30 s while it serves)."})
    queued_jobs = fields.Integer(metadata={"description": "Loads waiting for it to pick them up."})


class HostJobSchema(Schema):
    """A load asked of another host: queued, claimed by one of its processes, then finished (the load
    attempt started: ``run_id``) or failed (``error``); a queued one can be cancelled."""

    id = fields.Integer()
    model_name = fields.String(allow_none=True)
    host = fields.String(metadata={"description": "The host asked to load it."})
    job = Choice(m.WORKER_JOBS, component="WorkerJob")
    force = fields.Boolean()
    timeout = fields.Float(allow_none=True)
    state = host_job_state()
    requested_by = fields.String(allow_none=True, metadata={"description": "The host that asked."})
    requested_at = UtcDateTime()
    claimed_at = UtcDateTime(allow_none=True)
    claimed_by_pid = fields.Integer(allow_none=True, metadata={"description": "The process on that host that took it."})
    run_id = fields.Integer(allow_none=True, metadata={
        "description": "The load attempt it started (GET /api/models/{name}/attempts)."})
    attempt_outcome = Choice(m.ATTEMPT_OUTCOMES, component="RunOutcome", allow_none=True, metadata={
        "description": "That attempt's outcome now (running while it loads)."})
    finished_at = UtcDateTime(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "Why the host could not start the load."})


class HostJobsQuerySchema(Schema):
    host = Text(max_length=255)
    state = host_job_state()


class RetestResultSchema(Schema):
    model_name = fields.String()
    attempt_id = fields.Integer(allow_none=True)
    outcome = fields.String(metadata={"description": "The attempt's outcome, or 'skipped' when it could not start."})
    status = fields.String(allow_none=True, metadata={"description": "The model's status on this host afterwards."})
    error = fields.String(allow_none=True)


class RetestStatusSchema(Schema):
    """This host's Retest: the models whose results here are only from an older environment of this
    host, and the run loading them one after another."""

    host = fields.String()
    state = fields.String(metadata={"description": "idle, running, finished, stopped or failed"})
    done = fields.Integer()
    total = fields.Integer()
    current = fields.String(allow_none=True, metadata={"description": "The model being retested now."})
    stop_requested = fields.Boolean()
    results = fields.List(fields.Nested(RetestResultSchema))
    started_at = fields.Float(allow_none=True)
    finished_at = fields.Float(allow_none=True)
    error = fields.String(allow_none=True)
    needing = fields.List(fields.String(), metadata={
        "description": "Models that need a retest on this host now (results only from an older environment)."})


class CopyReadSchema(Schema):
    """A copy of the model's files that a result was read from, as the registry knows it now."""

    id = fields.Integer(allow_none=True, metadata={
        "description": "Its id (GET /api/models/{name}/copies; copy_id in a load, a measurement or a preflight); "
                       "null: the path is none of the model's copies on record now."})
    path = fields.String(metadata={"description": "The folder, or for a GGUF copy the GGUF file itself."})
    library = library(allow_none=True, metadata={
        "description": "Whose files hold it (HF cache, LM Studio, Ollama, ...); null when not a copy on record."})
    library_name = fields.String(allow_none=True, metadata={"description": "The library for people: 'LM Studio'."})
    label = fields.String(allow_none=True, metadata={
        "description": "The tool's own name for it (LM Studio: 'publisher/repo/file.gguf'; Ollama: 'llama3:8b')."})
    location = cache_location(allow_none=True)
    weight_format = fields.String(allow_none=True, metadata={"description": "safetensors, pickle, both, gguf or null"})
    quantization = fields.String(allow_none=True, metadata={"description": "e.g. 'GGUF Q4_K_M', 'GPTQ', or null"})
    missing = fields.Boolean(metadata={"description": "The latest scan did not find it."})
    text = fields.String(metadata={
        "description": "What it is and where, for people: 'GGUF Q4_K_M, LM Studio'; the path when not a copy on record."})
    where = fields.String(metadata={
        "description": "Its library and its name there: 'LM Studio: publisher/repo/file.gguf' (as the modal lists copies)."})
