"""A registry worth exporting, built through the same service functions the app uses: models with
notes, load configs, typed and card scores, finished load attempts (success, failure) and
measurements whose figures became the model's metrics (marked measured)."""

import os

import pytest

from modelhub import registry
from modelhub.app import create_app
from modelhub.loading import attempts
from modelhub.measuring import measurements
from modelhub.schemas import ModelCreateSchema
from tests.conftest import _postgres_schema

ENVIRONMENT = {
    "modelhub": {"timeout": 900.0}, "torch": "2.13.0", "torch_threads": 1, "transformers": "5.24.0",
    "cuda": None, "rocm": "6.2.41133", "gpus": [{"index": 0, "name": "AMD Radeon RX 7900 XTX", "memory_bytes": 25753026560}],
    "wsl": True, "packages": {"accelerate": "1.15.0"}, "python": "3.11.9", "platform": "Linux-6.6-WSL2",
}
RESULTS = {
    "time_to_first_token": {"avg_latency_ms": 41.25, "by_prompt_tokens": {"16": 40.0, "64": 41.0, "128": 42.75}},
    "throughput": {"batch1_tokens_per_sec": 31.5, "best_tokens_per_sec": 88.125, "best_batch_size": 4},
    "perplexity": {"perplexity": 12.3456, "tokens": 2048},
    "peak_memory": {"bytes": 123456789}, "load_seconds": 1.5,
}


def register(name: str, **fields):
    return registry.create_model(ModelCreateSchema().load({"model_name": name, **fields}))


def load_attempt(model, outcome: str, **details):
    attempt = attempts.begin(model)
    return attempts.finish(attempt.id, outcome, **details)


def measurement(model, outcome: str = "success", results=RESULTS):
    started = measurements.begin(model, {"throughput": {"new_tokens": 16}})
    details = {"results": results} if outcome == "success" else {"error_type": "OutOfMemoryError", "error_message": "oom"}
    return measurements.finish(started.id, outcome, final_kwargs={"dtype": "bfloat16"}, environment=ENVIRONMENT, **details)


def fill(app) -> None:
    """Three models with everything the export must carry, one with nothing but a name, and a load in
    progress (not exported)."""
    with app.app_context():
        phi = register("microsoft/phi-2", compatibility_notes="Works after restart.\nNeeds eager attention.",
                       load_config='{"attn_implementation": "eager",  "dtype": "bfloat16"}', quantization="None",
                       mmlu_score=56.7, humaneval_score=45.2)
        load_attempt(phi, "failure", error_type="RuntimeError", error_message="HIP out of memory",
                     explanation="Out of GPU memory.", suggestion={"device_map": "auto"}, environment=ENVIRONMENT,
                     final_kwargs={"dtype": "bfloat16"}, plugin_changes=[{"plugin": "legacy_keys", "set": {}}])
        load_attempt(phi, "success", environment=ENVIRONMENT, final_kwargs={"dtype": "bfloat16", "device_map": "auto"},
                     smoke_test={"output": "Hello ✓", "tokens": 4})
        measurement(phi, "failure")
        measurement(phi)
        registry.update_model("microsoft/phi-2", {
            "gpqa_score": 27.5,
            "metric_sources": {**registry.get_model("microsoft/phi-2").metric_sources,
                               "gpqa_score": {"source": "card", "card": "README.md", "dataset": "GPQA", "metric": "acc",
                                              "link": "https://example.org/leaderboard"}},
        })
        qwen = register("Qwen/Qwen2.5-0.5B", compatibility_status="incompatible", hf_path="Qwen/Qwen2.5-0.5B-Instruct",
                        compatibility_notes="Ünïcode notes: 日本語", perplexity=9.75)
        load_attempt(qwen, "failure", error_type="ValueError", error_message="bad\x01control")
        register("gpt2")
        loading = register("org/loading-now", compatibility_status="degraded")
        attempts.begin(loading)  # still running: its status is 'testing' until it ends


def make_app(url: str, home):
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "MODELHUB_HOME": str(home)})


@pytest.fixture
def other_app(database_url, tmp_path):
    """A second, empty registry on the same kind of database as ``app`` (another machine's)."""
    if database_url.startswith("sqlite"):
        urls = iter([f"sqlite:///{tmp_path / 'other' / 'models.db'}"])
    else:
        urls = _postgres_schema(os.environ["MODELHUB_TEST_DATABASE_URL"])
    app = make_app(next(urls), tmp_path / "other-home")
    yield app
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()
    for _ in urls:  # drops the PostgreSQL schema
        pass


def export_text(app) -> str:
    from modelhub.exchange.document import build_document, dumps

    with app.app_context():
        return dumps(build_document())


def import_text(app, text: str, **options) -> dict:
    from modelhub.exchange.document import parse
    from modelhub.exchange.merge import import_document

    with app.app_context():
        kind, document = parse(text, 10**8)
        return import_document(kind, document, **options)
