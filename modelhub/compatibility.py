"""Where a model loads: its load results per environment (host, accelerator, driver, library versions).

Every load attempt records the environment it ran in (``modelhub/environments.py``) and, once it ended,
the model's status there (``LoadAttempt.environment_status``, by the rules of
``modelhub/loading/status_rules.py``). This module reads those results back: per model, one row per
environment (``results``); for a page of cards, this host's status of each in one query
(``here_statuses``); and the models whose results here are only from an older environment of this host
(``needing_retest``: the host's libraries or driver changed since they were loaded).

A result is stale for a host when it was learned in an older environment of that host: for this host,
any environment but the one it runs in now; for another host, one older than the newest it registered.
"""

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from modelhub import environments
from modelhub.loading.copy_read import CopyRead, copies_read
from modelhub.exceptions import EnvironmentNotFound
from modelhub.extensions import db
from modelhub.loading import status_rules
from modelhub.models import Environment, LoadAttempt, LoadConfigVersion, ModelRegistry

# The outcomes that teach something about an environment (an interruption does not).
FINISHED = ("success", "failure")


def teaches():
    """The attempts that say something about the model in their environment: finished ones, but not the
    failed tries of an auto-configure run (each is one candidate config failing; the run's end records
    the verdict, on its last try, when nothing loaded)."""
    return and_(LoadAttempt.outcome.in_(FINISHED),
                or_(LoadAttempt.autoconfigure_run_id.is_(None), LoadAttempt.environment_status.is_not(None)))


# This host's results --------------------------------------------------------------------------------


def needing_retest(app) -> list[str]:
    """Names of the models whose results on this host are only from an older environment of this host
    (none yet from the one it runs in now), by name. Results from other hosts, and from attempts recorded
    before environments were, do not count: they say nothing about this host's upgrade."""
    return list(db.session.scalars(_needing_retest(app).with_only_columns(ModelRegistry.model_name)
                                   .order_by(func.lower(ModelRegistry.model_name))))


def retest_count(app) -> int:
    """How many models ``needing_retest`` names (the Models page's "N models need a retest")."""
    return db.session.scalar(_needing_retest(app).with_only_columns(func.count(ModelRegistry.id)))


def _needing_retest(app):
    current = environments.current_id(app)
    this_host = select(Environment.id).where(Environment.host == environments.host_name(app.config))
    learned_before = select(LoadAttempt.model_id).where(
        LoadAttempt.environment_id.in_(this_host), LoadAttempt.environment_id != current,
        teaches())
    learned_now = select(LoadAttempt.model_id).where(
        LoadAttempt.environment_id == current, teaches())
    return select(ModelRegistry.id).where(ModelRegistry.id.in_(learned_before), ModelRegistry.id.not_in(learned_now))


# The summary ----------------------------------------------------------------------------------------


@dataclass
class _Group:
    """One environment's finished attempts of one model (``environment_id`` None: recorded before
    environments were), newest first."""

    environment_id: int | None
    host: str | None
    last_seen_at: object
    attempt_ids: list[int]
    outcomes: list[str]
    newest_status: str | None

    @property
    def status(self) -> str:
        """The model's status in this environment: what its newest attempt's end set there (worked out
        by the same rule for attempts recorded before it was stored)."""
        if self.newest_status is not None:
            return self.newest_status
        previous = self.outcomes[1] if len(self.outcomes) > 1 else None
        return status_rules.environment_status(self.outcomes[0], previous)

    @property
    def newer(self) -> tuple:
        return (self.last_seen_at, self.environment_id)


def summary_status(model_id: int) -> str | None:
    """The registry's status of a model from its environments' results (status_rules: the newest
    environment of each host with a result counts; the best counted status wins). None: no result."""
    return status_rules.summary(group.status for group in _counted(_groups(model_id)))


def _groups(model_id: int) -> dict[int | None, _Group]:
    rows = db.session.execute(
        select(LoadAttempt.id, LoadAttempt.environment_id, LoadAttempt.outcome, LoadAttempt.environment_status,
               Environment.host, Environment.last_seen_at)
        .outerjoin(Environment, Environment.id == LoadAttempt.environment_id)
        .where(LoadAttempt.model_id == model_id, teaches())
        .order_by(LoadAttempt.id.desc()))
    groups: dict[int | None, _Group] = {}
    for attempt_id, environment_id, outcome, status, host, last_seen_at in rows:
        group = groups.setdefault(environment_id, _Group(environment_id, host, last_seen_at, [], [], status))
        group.attempt_ids.append(attempt_id)
        group.outcomes.append(outcome)
    return groups


def _counted(groups: dict[int | None, _Group]) -> list[_Group]:
    """The groups the summary counts: per host, its newest environment with a result; the results from
    before environments were only when no environment has one."""
    newest: dict[str, _Group] = {}
    for key, group in groups.items():
        if key is not None and (group.host not in newest or group.newer > newest[group.host].newer):
            newest[group.host] = group
    if newest:
        return list(newest.values())
    return [groups[None]] if None in groups else []


# Where a model loads --------------------------------------------------------------------------------


@dataclass
class EnvironmentResult:
    """A model's result in one environment (``environment`` None: attempts recorded before environments were)."""

    environment: Environment | None
    status: str  # the model's status there after its newest attempt there
    latest: LoadAttempt  # that newest finished attempt: its outcome, config, when
    config_version: int | None  # the number of the load_config version it ran (None: not recorded)
    successes: int
    failures: int
    here: bool  # this host's current environment
    stale: bool  # an older environment of its host: the host has changed since
    counted: bool  # whether the registry's status (the summary) counts it
    this_host: bool  # an environment of this host (the current one, or an older one)
    # The copy of the model's files its newest result read (a folder, a GGUF file), as the registry knows
    # it now: "compatible here" learned from the Q4_K_M GGUF says nothing yet of the safetensors folder.
    # None: that attempt recorded no copy (before copies were recorded, or loaded from the hub by id).
    copy: CopyRead | None = None

    @property
    def copy_path(self) -> str | None:
        return self.latest.copy_path

    @property
    def description(self) -> str:
        return environments.describe(self.environment)

    @property
    def environment_id(self) -> int | None:
        return self.environment.id if self.environment is not None else None

    @property
    def fingerprint(self) -> str | None:
        return self.environment.fingerprint if self.environment is not None else None

    @property
    def host(self) -> str | None:
        return self.environment.host if self.environment is not None else None

    @property
    def outcome(self) -> str:
        return self.latest.outcome

    @property
    def attempt_id(self) -> int:
        return self.latest.id

    @property
    def finished_at(self):
        return self.latest.finished_at

    @property
    def config_version_id(self) -> int | None:
        return self.latest.config_version_id

    @property
    def load_config(self) -> str | None:
        return self.latest.load_config

    @property
    def reason(self) -> str | None:
        """Why a success counts only as degraded there (parts offloaded), when it does."""
        report = self.latest.load_report if isinstance(self.latest.load_report, dict) else {}
        return report.get("degraded_reason") if self.latest.outcome == "success" else None


def where_it_loads(app, model: ModelRegistry) -> dict:
    """The model's status (the summary), its status here, and its result in each environment."""
    status_here = here(app, model)
    return {"model_name": model.model_name, "summary": model.compatibility_status,
            "here": {"environment_id": status_here.environment_id, "status": status_here.status,
                     "stale": status_here.stale},
            "environments": results(app, model)}


def results(app, model: ModelRegistry) -> list[EnvironmentResult]:
    """The model's result in each environment it was loaded in: this host's current environment first,
    then by newest result."""
    groups = _groups(model.id)
    counted = {group.environment_id for group in _counted(groups)}
    latest = {attempt.id: attempt for attempt in db.session.scalars(
        select(LoadAttempt).where(LoadAttempt.id.in_([group.attempt_ids[0] for group in groups.values()])))}
    found = {row.id: row for row in db.session.scalars(select(Environment).where(Environment.id.in_(
        [key for key in groups if key is not None])))}
    numbers = _version_numbers(attempt.config_version_id for attempt in latest.values())
    read = copies_read(model.id, [attempt.copy_path for attempt in latest.values()])
    current, newest = environments.current_id(app), _newest_per_host(found.values())
    this_host = environments.host_name(app.config)
    rows = []
    for key, group in groups.items():
        environment, attempt = found.get(key), latest[group.attempt_ids[0]]
        rows.append(EnvironmentResult(
            environment=environment, status=group.status, latest=attempt,
            config_version=numbers.get(attempt.config_version_id),
            successes=group.outcomes.count("success"), failures=group.outcomes.count("failure"),
            here=key is not None and key == current, counted=key in counted,
            this_host=environment is not None and environment.host == this_host,
            stale=environment is not None and _stale(environment, this_host, current, newest),
            copy=read.get(attempt.copy_path)))
    return sorted(rows, key=lambda row: (not row.here, -row.latest.id))


def _stale(environment: Environment, this_host: str, current: int, newest: dict[str, int]) -> bool:
    if environment.host == this_host:
        return environment.id != current
    return newest.get(environment.host, environment.id) != environment.id


def _newest_per_host(seen) -> dict[str, int]:
    """For each host among ``seen``'s, the id of its newest registered environment (all of its rows)."""
    hosts = {environment.host for environment in seen}
    newest: dict[str, tuple] = {}
    for environment_id, host, last_seen_at in db.session.execute(
            select(Environment.id, Environment.host, Environment.last_seen_at).where(Environment.host.in_(hosts))):
        if host not in newest or (last_seen_at, environment_id) > newest[host]:
            newest[host] = (last_seen_at, environment_id)
    return {host: pair[1] for host, pair in newest.items()}


def _version_numbers(version_ids) -> dict[int, int]:
    wanted = {version_id for version_id in version_ids if version_id is not None}
    if not wanted:
        return {}
    return dict(db.session.execute(select(LoadConfigVersion.id, LoadConfigVersion.number)
                                   .where(LoadConfigVersion.id.in_(wanted))).all())


@dataclass(frozen=True)
class Here:
    """A model's status on this host, for its card: in the environment this host runs in now."""

    environment_id: int
    status: str | None  # None: no result in this environment yet
    stale: bool  # no result here now, but some from an older environment of this host (needs a retest)
    elsewhere: bool  # results from other environments exist (the registry's status was learned there)


def here(app, model: ModelRegistry) -> Here:
    return here_statuses(app, [model.id])[model.id]


def here_statuses(app, model_ids) -> dict[int, Here]:
    """Each model's ``Here``, for a whole page of cards in one query: the newest finished attempt of each
    (model, environment) pair."""
    model_ids = list(model_ids)
    current, this_host = environments.current_id(app), environments.host_name(app.config)
    newest = (select(LoadAttempt.model_id, LoadAttempt.environment_id, func.max(LoadAttempt.id).label("id"))
              .where(LoadAttempt.model_id.in_(model_ids), teaches(),
                     LoadAttempt.environment_id.is_not(None))
              .group_by(LoadAttempt.model_id, LoadAttempt.environment_id).subquery())
    rows = db.session.execute(
        select(newest.c.model_id, newest.c.environment_id, LoadAttempt.outcome, LoadAttempt.environment_status,
               Environment.host)
        .join(LoadAttempt, LoadAttempt.id == newest.c.id).join(Environment, Environment.id == newest.c.environment_id))
    found: dict[int, dict] = {model_id: {"status": None, "before": False, "elsewhere": False} for model_id in model_ids}
    for model_id, environment_id, outcome, environment_status, host in rows:
        facts = found[model_id]
        if environment_id == current:
            facts["status"] = environment_status or status_rules.environment_status(outcome, None)
        elif host == this_host:
            facts["before"] = True
        else:
            facts["elsewhere"] = True
    return {model_id: Here(current, facts["status"], facts["status"] is None and facts["before"], facts["elsewhere"])
            for model_id, facts in found.items()}


# The environments themselves ------------------------------------------------------------------------

# Beyond what a database integer holds no id can exist (and PostgreSQL would refuse the query).
_LARGEST_ID = 2**31 - 1


def all_environments(app) -> list[dict]:
    """Every environment any host of this registry ran in, by host, newest first."""
    current = environments.current_id(app)
    return [_record(environment, current) for environment in db.session.scalars(
        select(Environment).order_by(Environment.host, Environment.last_seen_at.desc(), Environment.id.desc()))]


def get_environment(app, environment_id: int) -> dict:
    environment = db.session.get(Environment, environment_id) if 0 < environment_id <= _LARGEST_ID else None
    if environment is None:
        raise EnvironmentNotFound(environment_id)
    return _record(environment, environments.current_id(app))


def _record(environment: Environment, current: int) -> dict:
    return {"id": environment.id, "fingerprint": environment.fingerprint, "host": environment.host,
            "description": environments.describe(environment), "facts": environment.facts,
            "first_seen_at": environment.first_seen_at, "last_seen_at": environment.last_seen_at,
            "current": environment.id == current}
