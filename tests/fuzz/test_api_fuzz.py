"""Schemathesis against /api/openapi.json, in-process on the WSGI app, on SQLite and PostgreSQL.

Every check runs, none excluded (no 5xx, status codes, content types, headers and bodies as documented,
valid requests accepted (positive_data_acceptance), invalid ones refused, 405 + Allow for undeclared
methods, ...), plus one of ours:
each status code is listed for its operation (flask-smorest's ``default`` response would let any
code pass schemathesis' own check). Examples are derandomized: CI runs the same ones every time.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from modelhub import registry
from modelhub.extensions import db

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "fuzz"
EXAMPLES_PER_OPERATION = 100
STATEFUL_SCENARIOS = 100
STATEFUL_STEPS = 12
FUZZ_SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))

# No shrinking: the server's state outlives a step, so a shrunk sequence may not replay; the
# failure hypothesis found first is reported as it happened.
STATEFUL_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)

schema = schemathesis.pytest.from_fixture("api_schema")


def _empty_registry(app) -> None:
    app.extensions["modelhub.autoconfigure"].shutdown()  # its searches first: they would start more loads
    app.extensions["modelhub.supervisor"].shutdown()
    with app.app_context():
        for model in registry.list_models(per_page=500).items:
            registry.delete_model(model.model_name)
        db.session.remove()


@schemathesis.check
def status_code_listed(ctx, response, case):
    """The answer's status code is one the operation lists explicitly (not only through ``default``)."""
    if case.method.upper() != case.operation.method.upper():
        return  # a probe with an undeclared method (405 + Allow is schemathesis' own check)
    listed = set(case.operation.definition.raw.get("responses", {})) - {"default"}
    if str(response.status_code) not in listed:
        raise AssertionError(
            f"{case.method} {case.operation.path} answered {response.status_code}, which its OpenAPI "
            f"operation does not list (it lists {', '.join(sorted(listed))})"
        )


@pytest.fixture
def calls(api_schema, request):
    """Requests sent per operation, and each check's verdicts, saved to test-artifacts/fuzz/ for
    docs/reliability.md."""
    counter, verdicts = Counter(), Counter()

    @api_schema.hook("after_call")
    def count(context, case, response):
        counter[f"{case.method} {case.operation.path}"] += 1

    @api_schema.hook("after_validate")
    def tally(context, case, response, results):
        if case.meta is not None:
            verdicts[f"cases {case.meta.generation.mode.name.lower()}"] += 1  # meant valid, or invalid
        for result in results:
            verdicts[f"{result.name} {result.status.name.lower()}"] += 1

    counter.verdicts = verdicts
    yield counter
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = request.node.name.replace("[", "-").rstrip("]")
    report = {"requests": dict(sorted(counter.items())), "checks": dict(sorted(verdicts.items()))}
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(report, indent=1))


def test_every_check_is_on(api_schema):
    """positive_data_acceptance and the other checks that would fail on a document looser (or stricter)
    than the server are not turned off anywhere (schemathesis.toml, config): the document must be right."""
    from schemathesis.checks import CHECKS, load_all_checks

    load_all_checks()
    config = api_schema.config.checks_config_for()
    names = {check.__name__ for check in CHECKS.get_all()}
    assert {"positive_data_acceptance", "negative_data_rejection", "response_headers_conformance",
            "response_schema_conformance", "status_code_conformance", "unsupported_method"} <= names
    assert [name for name in sorted(names) if not config.get_by_name(name=name).enabled] == []


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, **FUZZ_SETTINGS)
def test_every_operation(case, calls):
    case.call_and_validate()


def test_stateful(api_schema, fuzz_app, calls):
    """Sequences that follow the OpenAPI links: register a model, then read, edit, load, measure,
    unload and delete it, with every check on every response."""

    # Without GET /api/health: it takes nothing and links nowhere, so a step there proves nothing about a
    # sequence, while its mere presence reshuffles the derandomized sequences (it is fuzzed on its own above).
    class Scenario(api_schema.exclude(path="/api/health").as_state_machine()):
        def setup(self):
            # Each scenario starts from an empty registry with no worker running, so that a failing
            # one replays the same way (the app outlives the scenarios).
            _empty_registry(fuzz_app)

    Scenario.run(settings=settings(max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS,
                                   phases=STATEFUL_PHASES, **FUZZ_SETTINGS))
    assert calls["POST /api/models"] > 0
    assert calls.verdicts["positive_data_acceptance success"] > 0  # valid requests were sent and judged
    assert sum(n for op, n in calls.items() if "{model_name}" in op) > STATEFUL_SCENARIOS
