"""The registry table. Its name and column names are a contract with users (the README's REST section):
they debug with ``sqlite3 models.db "SELECT model_name, load_config FROM modelregistry;"``."""

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, select, text
from sqlalchemy.orm import Mapped, column_property, declared_attr, mapped_column

from modelhub.extensions import db

COMPATIBILITY_STATUSES = ("unknown", "compatible", "incompatible", "degraded", "testing")
CACHE_LOCATIONS = ("primary", "secondary", "custom")

MODEL_NAME_MAX = 200
QUANTIZATION_MAX = 64


def utcnow() -> datetime:
    return datetime.now(UTC)


def _one_of(column: str, values: tuple[str, ...], table: str = "modelregistry") -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"ck_{table}_{column}")


class ModelRegistry(db.Model):
    """One registered model: where it lives, whether it loads here, how to load it, how good it is."""

    __tablename__ = "modelregistry"
    __table_args__ = (
        _one_of("compatibility_status", COMPATIBILITY_STATUSES),
        _one_of("cache_location", CACHE_LOCATIONS),
        # Never reuse the id of a deleted row: ETags are built from (id, version).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(MODEL_NAME_MAX), unique=True)
    hf_path: Mapped[str] = mapped_column(String(MODEL_NAME_MAX))
    cache_location: Mapped[str] = mapped_column(String(16), default="primary", server_default="primary")
    cache_path: Mapped[str | None] = mapped_column(Text)
    compatibility_status: Mapped[str] = mapped_column(String(16), default="unknown", server_default="unknown")
    compatibility_notes: Mapped[str | None] = mapped_column(Text)
    # The JSON exactly as the user saved it; NULL means "system defaults".
    load_config: Mapped[str | None] = mapped_column(Text)

    # One column per metric of modelhub.metric_catalogue, in its order (tests/test_metric_catalogue.py).
    mmlu_score: Mapped[float | None] = mapped_column(Float)
    gpqa_score: Mapped[float | None] = mapped_column(Float)
    hellaswag_score: Mapped[float | None] = mapped_column(Float)
    humaneval_score: Mapped[float | None] = mapped_column(Float)
    mbpp_score: Mapped[float | None] = mapped_column(Float)
    math_score: Mapped[float | None] = mapped_column(Float)
    truthfulqa_score: Mapped[float | None] = mapped_column(Float)
    perplexity: Mapped[float | None] = mapped_column(Float)
    max_throughput_tokens_sec: Mapped[float | None] = mapped_column(Float)
    avg_latency_ms: Mapped[float | None] = mapped_column(Float)
    quantization: Mapped[str | None] = mapped_column(String(QUANTIZATION_MAX))

    # Where each metric value came from when not typed by a user: {"mmlu_score": {"source": "card", ...}}.
    # A field with a value and no entry was typed; typing a value removes its entry.
    metric_sources: Mapped[dict | None] = mapped_column(JSON)

    # Set by a scan when none of the model's copies is on disk any more (the entry and what the user
    # learned about it are kept); cleared when a copy comes back.
    missing: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # Bumped by SQLAlchemy on every UPDATE, which then checks it in the WHERE clause: a write based
    # on a stale read fails instead of silently overwriting someone else's change.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    @property
    def etag(self) -> str:
        return f"{self.id}.{self.version}"

    def __repr__(self) -> str:
        return f"<ModelRegistry {self.model_name!r} v{self.version}>"


# The Models page lists by name ignoring case, optionally within one status: with these indexes its
# first page costs the same with 100 models or 10,000.
Index("ix_modelregistry_name_lower", func.lower(ModelRegistry.model_name))
Index("ix_modelregistry_status_name_lower", ModelRegistry.compatibility_status, func.lower(ModelRegistry.model_name))


FINISHED_OUTCOMES = ("success", "failure", "interrupted")
ATTEMPT_OUTCOMES = ("running", *FINISHED_OUTCOMES)


class WorkerRun:
    """What a load attempt and a measurement both record: a run of a worker process on one model."""

    @declared_attr.directive
    def __table_args__(cls):
        return (_one_of("outcome", ATTEMPT_OUTCOMES, table=cls.__tablename__),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("modelregistry.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    stage: Mapped[str | None] = mapped_column(String(32))  # while running: what the worker is doing
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    load_config: Mapped[str | None] = mapped_column(Text)  # the user's text, as it was at the start
    # What preflight predicted this run's peak memory would be, for the same config, at its start
    # (modelhub/preflight): set beside the measured peak, it is what calibrates preflight on this host.
    predicted_peak: Mapped[dict | None] = mapped_column(JSON)
    # Which version of the model's load_config it ran, and in which environment (host, accelerator,
    # driver, library versions: modelhub/environments.py). NULL for runs recorded before either existed.
    config_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("load_config_version.id", ondelete="SET NULL"), index=True)
    environment_id: Mapped[int | None] = mapped_column(ForeignKey("environment.id", ondelete="SET NULL"), index=True)
    final_kwargs: Mapped[dict | None] = mapped_column(JSON)
    environment: Mapped[dict | None] = mapped_column(JSON)
    # The copy of the model's files the worker loaded (a folder, or a GGUF file): the one asked for, else
    # the model's cache_path. NULL for runs recorded before copies could be chosen.
    copy_path: Mapped[str | None] = mapped_column(Text)
    worker_pid: Mapped[int | None] = mapped_column(Integer)


class LoadAttempt(WorkerRun, db.Model):
    """One try at loading a model: what was asked, what the plugins made of it, and how it ended."""

    __tablename__ = "load_attempt"

    # The status the model had before this attempt set it to "testing" (restored if interrupted).
    previous_status: Mapped[str] = mapped_column(String(16))
    explanation: Mapped[str | None] = mapped_column(Text)
    suggestion: Mapped[dict | None] = mapped_column(JSON)
    plugin_changes: Mapped[list | None] = mapped_column(JSON)
    smoke_test: Mapped[dict | None] = mapped_column(JSON)
    # What the load really was (dtype, attention, where each part sits, quantization, the weights
    # transformers reported missing or mismatched) and the warnings it raised, from the worker.
    load_report: Mapped[dict | None] = mapped_column(JSON)
    warnings: Mapped[list | None] = mapped_column(JSON)
    # The model's status in this attempt's environment after it ended (the rules of
    # modelhub/loading/status_rules.py, applied per environment); NULL while running or interrupted.
    environment_status: Mapped[str | None] = mapped_column(String(16))
    # Which kind of failure it was (``FAILURE_KINDS``: out of memory, attention, bf16 unsupported, ...),
    # as the plugin that explained it (or the watcher, for a crash or a timeout) classified it.
    failure_kind: Mapped[str | None] = mapped_column(String(32))
    # The worker's measured peak: host RSS, GPU max allocated, and the RSS before any weight was read.
    measured_peak: Mapped[dict | None] = mapped_column(JSON)
    # A try of an auto-configure run (its load_config is the candidate, not a saved version).
    autoconfigure_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("autoconfigure_run.id", ondelete="SET NULL"), index=True)
    limitation: Mapped[str | None] = mapped_column(Text)  # what a try's config gives up: success is degraded


class ModelCopy(db.Model):
    """One copy of a model's files on disk, as a scan (or a custom registration) found it."""

    __tablename__ = "model_copy"
    __table_args__ = (
        _one_of("location", CACHE_LOCATIONS, table="model_copy"),
        UniqueConstraint("model_id", "path", name="uq_model_copy_model_path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("modelregistry.id", ondelete="CASCADE"), index=True)
    location: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)
    revision: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    weight_format: Mapped[str | None] = mapped_column(String(16))
    architecture: Mapped[str | None] = mapped_column(String(200))
    model_type: Mapped[str | None] = mapped_column(String(100))
    quantization: Mapped[str | None] = mapped_column(String(QUANTIZATION_MAX))
    incomplete: Mapped[bool] = mapped_column(Boolean, default=False)
    incomplete_reason: Mapped[str | None] = mapped_column(Text)
    missing: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Which tool's library the copy is in (modelhub/discovery/libraries.py: "huggingface", "folder",
    # "lmstudio", "ollama", "text-generation-webui", "custom") and that library's root, as configured.
    library: Mapped[str | None] = mapped_column(String(32))
    library_root: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)  # the tool's own name for it ("llama3:8b" in Ollama)
    # A GGUF copy's path is the file itself. Its sha256 ("sha256:<hex>"): free for an Ollama blob (its
    # name), computed only when another file of the same size could be the same model.
    digest: Mapped[str | None] = mapped_column(String(71), index=True)
    # The file version the facts above were read from ("dev:ino:size:mtime_ns"): a rescan of an
    # unchanged file reuses them instead of reading its header (or hashing it) again.
    file_key: Mapped[str | None] = mapped_column(String(100))
    parameter_count: Mapped[int | None] = mapped_column(BigInteger)
    context_length: Mapped[int | None] = mapped_column(Integer)
    # Other paths of the very same file (a symlink or a hard link in another library): [{path, library}].
    aliases: Mapped[list | None] = mapped_column(JSON)


class Measurement(WorkerRun, db.Model):
    """One measurement run: the model loaded in a worker with its load_config, then timed and scored."""

    __tablename__ = "measurement"

    settings: Mapped[dict | None] = mapped_column(JSON)
    results: Mapped[dict | None] = mapped_column(JSON)  # ttft, throughput, perplexity, memory, load_seconds


WORKER_JOBS = ("load", "measure")
LEASE_STATES = ("loading", "loaded")


class WorkerLease(db.Model):
    """Which web process runs the worker of a model now. At most one per model (its primary key), in
    the database that every web process — and every host sharing a PostgreSQL registry — sees: a load
    claimed by one process is refused by the others, and any process can answer for its state."""

    __tablename__ = "worker_lease"
    __table_args__ = (
        _one_of("job", WORKER_JOBS, table="worker_lease"),
        _one_of("state", LEASE_STATES, table="worker_lease"),
    )

    model_id: Mapped[int] = mapped_column(ForeignKey("modelregistry.id", ondelete="CASCADE"), primary_key=True)
    job: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="loading")
    run_id: Mapped[int | None] = mapped_column(Integer)  # the load attempt's or the measurement's id
    stage: Mapped[str | None] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    owner_pid: Mapped[int] = mapped_column(Integer)  # the web process supervising the worker
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # While loading: when the owner's own timeout ends it. Past it (and a grace), the owner is gone.
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by another process (or host) asking the owner to end the worker; the owner polls it.
    stop_reason: Mapped[str | None] = mapped_column(Text)


class ScanState(db.Model):
    """The latest scan of one host's cache locations: its progress while it runs, then its summary.
    One row per host, so every web process on it shows the same progress and only one scans."""

    __tablename__ = "scan_state"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="idle")  # idle, running, finished, failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[float | None] = mapped_column(Float)  # Unix time, as the API shows it
    finished_at: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    owner_pid: Mapped[int | None] = mapped_column(Integer)  # the process scanning


class Environment(db.Model):
    """One environment a run happened in: a host with its accelerator, driver and library versions.
    Its ``fingerprint`` is a digest of those facts (modelhub/environments.py): upgrading transformers
    or a driver makes a new environment, whose results are told apart from the old one's."""

    __tablename__ = "environment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    facts: Mapped[dict] = mapped_column(JSON)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# What made a version of a model's load_config.
CONFIG_SOURCES = ("existing", "created", "typed", "import", "suggestion", "auto-configure", "restore")


class LoadConfigVersion(db.Model):
    """One version of a model's load_config: every change makes one (modelhub/config_history.py)."""

    __tablename__ = "load_config_version"
    __table_args__ = (
        _one_of("source", CONFIG_SOURCES, table="load_config_version"),
        UniqueConstraint("model_id", "number", name="uq_load_config_version_model_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("modelregistry.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per model
    load_config: Mapped[str | None] = mapped_column(Text)  # the text as saved; NULL: the defaults
    source: Mapped[str] = mapped_column(String(32))
    via: Mapped[str | None] = mapped_column(String(16))  # api, page, cli, import, server
    host: Mapped[str | None] = mapped_column(String(255))
    restored_from: Mapped[int | None] = mapped_column(Integer)  # the number a "restore" copied
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


HOST_JOB_STATES = ("queued", "claimed", "finished", "failed", "cancelled")


# The number of the load_config version a run ran, read with the run: clients and pages name versions by
# number (GET /api/models/{name}/configs/{number}); the id is this database's own.
for _run_type in (LoadAttempt, Measurement):
    _run_type.config_version = column_property(
        select(LoadConfigVersion.number).where(LoadConfigVersion.id == _run_type.config_version_id)
        .correlate_except(LoadConfigVersion).scalar_subquery())
del _run_type


class HostJob(db.Model):
    """A load asked of another host sharing this registry: queued here, claimed by that host's
    modelhub (one claim wins, as for leases), which then loads the model itself."""

    __tablename__ = "host_job"
    __table_args__ = (
        _one_of("state", HOST_JOB_STATES, table="host_job"),
        _one_of("job", WORKER_JOBS, table="host_job"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("modelregistry.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(255), index=True)  # the host asked to run it
    job: Mapped[str] = mapped_column(String(16), default="load")
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    timeout: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    requested_by: Mapped[str | None] = mapped_column(String(255))  # the host that asked
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by_pid: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(Integer)  # the load attempt it started
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class RetestState(db.Model):
    """This host's "Retest": models whose results are from an older environment here, loaded again one
    after another. One row per host, like ScanState: every web process shows the same progress."""

    __tablename__ = "retest_state"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="idle")  # idle, running, finished, stopped, failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    current: Mapped[str | None] = mapped_column(String(MODEL_NAME_MAX))  # the model loading now
    results: Mapped[list | None] = mapped_column(JSON)  # [{"model_name", "outcome", "status"}]
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


AUTOCONFIGURE_STATES = ("running", "succeeded", "failed", "stopped", "interrupted")


class AutoconfigureRun(db.Model):
    """A search for a load_config that loads a model on one host: each try is a load attempt (linked by
    ``autoconfigure_run_id``), the next config chosen from the classified cause of the last failure
    (modelhub/autoconfigure). ``tries`` is the chain as the run saw it: each try's config, why it was
    chosen, its attempt, outcome and cause."""

    __tablename__ = "autoconfigure_run"
    __table_args__ = (
        _one_of("state", AUTOCONFIGURE_STATES, table="autoconfigure_run"),
        # One running search per model: two starts racing (two processes, two hosts) open one run.
        Index("uq_autoconfigure_run_one_running", "model_id", unique=True,
              sqlite_where=text("state = 'running'"), postgresql_where=text("state = 'running'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("modelregistry.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(255))
    environment_id: Mapped[int | None] = mapped_column(ForeignKey("environment.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    start_config: Mapped[str | None] = mapped_column(Text)  # the model's load_config when it started
    result_config: Mapped[str | None] = mapped_column(Text)  # the first config that loaded
    result_status: Mapped[str | None] = mapped_column(String(16))  # compatible, degraded, incompatible
    result_reason: Mapped[str | None] = mapped_column(Text)  # the limitation, or why nothing loaded
    tries: Mapped[list | None] = mapped_column(JSON)
    max_tries: Mapped[int] = mapped_column(Integer)
    max_seconds: Mapped[float] = mapped_column(Float)
    apply: Mapped[bool] = mapped_column(Boolean, default=False)  # make the result the load_config at once
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    applied_version_id: Mapped[int | None] = mapped_column(ForeignKey("load_config_version.id", ondelete="SET NULL"))
    owner_pid: Mapped[int | None] = mapped_column(Integer)  # the web (or CLI) process running it
