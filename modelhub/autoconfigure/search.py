"""The search for a load_config that loads: after each failed try, the next config to try, and why.

Pure logic: no database, no Flask, no torch. The runner (modelhub/autoconfigure) does the real tries and
feeds their failures back::

    search = Search(model_info, start_config, environment, plugins, prune=preflight_prune, max_tries=8)
    candidate = search.first()                  # the start config itself: try 1
    candidate = search.after_failure(failure)   # the next Candidate, or None: search.ended_because says why

Where the next config comes from: every plugin's ``propose_configs`` for the failed config and its
failure (the built-in rules are in modelhub/autoconfigure/rules.py, done by the plugins that own the keys),
plus the explainer's own suggestion, merged by priority. A proposal changes only the keys it names, so a
fallback carries the user's other settings with it, unknown plugin keys included.

How it never loops: a config is tried or considered at most once (compared as canonical JSON: sorted keys,
a key set to None is absent); every try counts against ``max_tries`` (the start is try 1), every config
considered against ``max_considered``. When the newest failure leaves nothing new, the search goes back
to the proposals of the failures before it (depth first: the newest failure knows most), asking the
plugins again, with what it learned since (a package found missing is missing for every later proposal).
It does not go back to an earlier failure of the same family (rules.FAMILIES): the newer config already
carries that failure's answer, so its milder alternatives would fail again.

Pruning: a config ``prune`` rejects (preflight: it cannot fit) is not tried; it is recorded in
``skipped`` and treated as a failure of kind ``wont_fit`` without a try, so the plugins propose what
would fit from it (offloading that does not fit -> 8-bit with offloading). A config that turns on a
setting only the user may allow (rules.USER_ONLY) is skipped the same way, and never expanded.
"""

import copy
import json
import logging
from dataclasses import dataclass, field

from modelhub.autoconfigure import rules
from modelhub.loading.types import Failure, Proposal

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    """A config to try: why it was chosen, what changed from the tried config it follows (``None``: the
    key is removed), and what the user gives up if it is the one that loads (None: nothing)."""

    config: dict
    why: str
    changes: dict
    limitation: str | None = None
    plugin: str | None = None  # who proposed it: a plugin's name, "explanation" (the failure's suggestion), None
    number: int = 1  # which try this is
    limitations: dict = field(default_factory=dict, repr=False)  # plugin -> (what it gives up, the keys)


@dataclass
class _Source:
    """A failed config (tried, or pruned without a try) whose proposals may still hold untried configs."""

    config: dict
    failure: Failure
    origin: Candidate  # the tried config this lineage started from: changes are reported against it
    path: list[str]  # the whys of the pruned steps between origin and config
    limitations: dict


def canonical(config: dict) -> str:
    """The identity of a config: sorted keys, keys set to None left out (None means absent)."""
    return json.dumps({key: value for key, value in (config or {}).items() if value is not None},
                      sort_keys=True, separators=(",", ":"), default=str)


def apply_changes(config: dict, changes: dict) -> dict:
    """``config`` with ``changes`` applied: None removes a key; every other key stays as it was."""
    result = {key: copy.deepcopy(value) for key, value in config.items() if value is not None}
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = copy.deepcopy(value)
    return result


def changes_between(old: dict, new: dict) -> dict:
    """The keys whose value differs (None: removed in ``new``)."""
    keys = [key for key in {**old, **new} if old.get(key) != new.get(key)]
    return {key: copy.deepcopy(new.get(key)) for key in sorted(keys)}


class Search:
    """One search: ``first()``, then ``after_failure(failure)`` after every failed try, until None."""

    def __init__(self, model_info, start_config: dict, environment: dict, plugins, prune=None, max_tries: int = 8,
                 max_considered: int | None = None):
        self.model = model_info
        self.start = copy.deepcopy(start_config or {})
        self.environment = copy.deepcopy(environment or {})  # learns: packages found missing
        self.plugins = plugins
        self.prune = prune
        self.max_tries = max(1, int(max_tries))
        self.max_considered = max_considered or 8 * self.max_tries + 16
        self.tried: list[Candidate] = []
        self.failures: list[Failure] = []
        self.skipped: list[tuple[dict, str]] = []  # (config, why it was not tried)
        self.plugin_errors: list[tuple[str, str]] = []  # (plugin, error) from propose_configs
        self.ended_because: str | None = None
        self._seen: set[str] = set()
        self._sources: list[_Source] = []
        self._missing: dict[str, str] = {}  # package -> the cause that named it
        self._considered = 0

    # ---- the interface --------------------------------------------------------------------------

    def first(self) -> Candidate:
        """Try 1: the start config itself (preflight may be wrong; a real try is the judge)."""
        if not self.tried:
            self._seen.add(canonical(self.start))
            self.tried.append(Candidate(config=copy.deepcopy(self.start), why="The model's current load_config.",
                                        changes={}, number=1))
        return self.tried[0]

    def after_failure(self, failure: Failure) -> Candidate | None:
        """The next config to try after the last candidate failed, or None (``ended_because`` says why)."""
        if self.ended_because is not None:
            return None
        current = self.first() if not self.tried else self.tried[-1]
        self.failures.append(failure)
        if failure.kind == "missing_package":
            self._learn_missing(failure)
        stop = self._stop_reason(failure)
        if stop:
            return self._end(stop)
        # Earlier failures of the same family were answered less boldly: the newest config already carries
        # their changes, so their other proposals would fail the same way (plain 8-bit after offloaded 4-bit).
        family = rules.FAMILIES.get(failure.kind, failure.kind)
        self._sources = [source for source in self._sources
                         if rules.FAMILIES.get(source.failure.kind, source.failure.kind) != family]
        self._sources.append(_Source(current.config, failure, current, [], dict(current.limitations)))
        candidate = self._next()
        if candidate is None:
            return self._end(self._exhausted_reason(failure))
        return candidate

    # ---- choosing ---------------------------------------------------------------------------------

    def _stop_reason(self, failure: Failure) -> str | None:
        kind = failure.kind if failure.kind in rules.ADVICE else "other"
        where = f"try {len(self.tried)}"
        if kind in rules.STOP_KINDS:
            return f"Stopped at {where} ({rules.LABELS[kind]}): {failure.cause} {rules.ADVICE[kind]}"
        if kind == "crash" and sum(f.kind == "crash" for f in self.failures) > rules.CRASH_LIMIT:
            return (f"Stopped at {where}: the worker crashed {rules.CRASH_LIMIT + 1} times, so the cause is not "
                    f"memory. {rules.ADVICE['crash']}")
        if len(self.tried) >= self.max_tries:
            return (f"Tried {len(self.tried)} configs, the most this search may (max_tries); the last failed "
                    f"({rules.LABELS[kind]}): {failure.cause}{self._missing_text()}")
        return None

    def _learn_missing(self, failure: Failure) -> None:
        name = rules.package_name(failure.package)
        if name:
            self._missing[name] = failure.cause
            self.environment.setdefault("packages", {})[name] = None

    def _next(self) -> Candidate | None:
        while self._sources and self._considered < self.max_considered:
            source = self._sources[-1]
            fresh = self._fresh(source)
            if fresh is None:
                self._sources.pop()
                continue
            config, proposal, plugin = fresh
            self._seen.add(canonical(config))
            self._considered += 1
            limitations = _limitations_after(source.limitations, proposal, plugin, source.config, config)
            refusal = self._user_only(config) or self._pruned(config)
            if refusal:
                self.skipped.append((config, refusal))
                if not refusal.startswith("turns on"):  # a pruned config: what would fit, starting from it
                    self._sources.append(_Source(config, Failure(kind="wont_fit", cause=refusal), source.origin,
                                                 [*source.path, f"{proposal.why} ({refusal})"], limitations))
                continue
            return self._candidate(source, config, proposal, plugin, limitations)
        return None

    def _fresh(self, source: _Source):
        """The best proposal for ``source`` that leads to a config never tried nor considered, or None."""
        for proposal, plugin in self._proposals(source):
            config = apply_changes(source.config, proposal.changes)
            key = canonical(config)
            if key not in self._seen:
                return config, proposal, plugin
            self._note_repeat(config, key)
        return None

    def _proposals(self, source: _Source) -> list[tuple[Proposal, str]]:
        """Every plugin's proposals for this failed config, and the explainer's suggestion, by priority."""
        found = []
        calls = self.plugins.call_each("propose_configs", model=self.model, failure=source.failure,
                                       load_config=copy.deepcopy(source.config), environment=self.environment)
        for call in calls:
            if call.error is not None:
                self._plugin_error(call.plugin, f"{type(call.error).__name__}: {call.error}")
                continue
            for proposal in call.result or []:
                if isinstance(proposal, Proposal) and isinstance(proposal.changes, dict):
                    found.append((proposal, call.plugin))
                else:
                    self._plugin_error(call.plugin, f"returned {proposal!r}, not a Proposal")
        suggestion = source.failure.suggestion
        if isinstance(suggestion, dict) and suggestion:
            found.append((Proposal(changes=suggestion, why=f"The failure's explanation suggests it: {source.failure.cause}",
                                   priority=rules.SUGGESTION_PRIORITY), "explanation"))
        return sorted(found, key=lambda item: item[0].priority)  # stable: plugins' call order among equals

    def _user_only(self, config: dict) -> str | None:
        turned_on = [key for key in rules.USER_ONLY if config.get(key) and not self.start.get(key)]
        if turned_on:
            return f"turns on {', '.join(turned_on)}, which only the user may allow"
        return None

    def _pruned(self, config: dict) -> str | None:
        if self.prune is None:
            return None
        try:
            reason = self.prune(config)
        except Exception as error:  # noqa: BLE001 - preflight failing must not stop the search: try it for real
            log.warning("prune failed for %s: %s", canonical(config), error)
            return None
        if not reason:
            return None
        return reason if str(reason).startswith("preflight") else f"preflight: {reason}"

    def _note_repeat(self, config: dict, key: str) -> None:
        tried = next((candidate.number for candidate in self.tried if canonical(candidate.config) == key), None)
        reason = f"already tried (try {tried})" if tried else None
        if reason and (key, reason) not in {(canonical(c), r) for c, r in self.skipped}:
            self.skipped.append((config, reason))

    def _plugin_error(self, plugin: str, error: str) -> None:
        if (plugin, error) not in self.plugin_errors:
            self.plugin_errors.append((plugin, error))

    def _candidate(self, source: _Source, config: dict, proposal: Proposal, plugin: str, limitations: dict) -> Candidate:
        why = " → ".join([*source.path, proposal.why])
        candidate = Candidate(config=config, why=why, changes=changes_between(source.origin.config, config),
                              limitation="; ".join(dict.fromkeys(text for text, _ in limitations.values())) or None,
                              plugin=plugin,
                              number=len(self.tried) + 1, limitations=limitations)
        self.tried.append(candidate)
        return candidate

    # ---- ending ---------------------------------------------------------------------------------

    def _end(self, reason: str) -> None:
        self.ended_because = reason
        return None

    def _exhausted_reason(self, failure: Failure) -> str:
        kind = failure.kind if failure.kind in rules.ADVICE else "other"
        text = f"Nothing left to try after try {len(self.tried)} failed ({rules.LABELS[kind]}): {rules.ADVICE[kind]}"
        if self._considered >= self.max_considered:
            text = f"Stopped after considering {self._considered} configs (the most this search may): {rules.ADVICE[kind]}"
        pruned = sum(reason.startswith("preflight:") for _, reason in self.skipped)
        if pruned:
            text += f" ({pruned} config{'s' if pruned != 1 else ''} skipped: preflight says {'they' if pruned != 1 else 'it'} cannot fit.)"
        return text + self._missing_text()

    def _missing_text(self) -> str:
        if not self._missing:
            return ""
        return " Missing here: " + " ".join(f"{name} ({cause})" for name, cause in self._missing.items())


def _limitations_after(limitations: dict, proposal: Proposal, plugin: str, old: dict, new: dict) -> dict:
    """What the user gives up, as ``{plugin: (text, the keys it is about)}``. A proposal with a limitation
    replaces its own plugin's earlier one (8-bit -> 4-bit) and those about keys it changes (quantized weights
    placed in RAM: no longer offloaded); one without drops those about keys it removes (quantization dropped)."""
    changed = changes_between(old, new)
    removed = {key for key, value in changed.items() if value is None}
    touched = set(changed) if proposal.limitation else removed
    result = {owner: (text, keys) for owner, (text, keys) in limitations.items()
              if not (keys & touched) and not (proposal.limitation and owner == plugin)}
    if proposal.limitation:
        result[plugin] = (proposal.limitation, frozenset(changed))
    return result
