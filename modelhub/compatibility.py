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

from sqlalchemy import func, select

from modelhub import environments
from modelhub.exceptions import EnvironmentNotFound
from modelhub.extensions import db
from modelhub.loading import status_rules
from modelhub.models import Environment, LoadAttempt, LoadConfigVersion, ModelRegistry

# The outcomes that teach something about an environment (an interruption does not).
FINISHED = ("success", "failure")


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
        LoadAttempt.outcome.in_(FINISHED))
    learned_now = select(LoadAttempt.model_id).where(
        LoadAttempt.environment_id == current, LoadAttempt.outcome.in_(FINISHED))
    return select(ModelRegistry.id).where(ModelRegistry.id.in_(learned_before), ModelRegistry.id.not_in(learned_now))
