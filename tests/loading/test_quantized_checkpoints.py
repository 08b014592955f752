"""Pre-quantized checkpoints made here (tests/quantized_models.py: GPTQ and AWQ by gptqmodel on the CPU,
bitsandbytes 8-bit and 4-bit by save_pretrained) are found by a scan with their quantization, load through
POST /api/models/{name}/load in a real worker on the CPU, and are measured. transformers 5.24 loads AWQ
through gptqmodel (the `gptq` extra), so an AWQ checkpoint loads here too; without gptqmodel a GPTQ or AWQ
checkpoint is refused before any weight is read, naming what to install, and preflight says the same."""

import math
import shutil

import pytest

from modelhub import preflight
from modelhub.extensions import db
from modelhub.models import ModelRegistry
from modelhub.preflight import host as host_facts
from tests.discovery.test_scan_api import scan
from tests.loading.test_measure import measure

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

# What load_report says of each (the quantization config transformers attached to the loaded model).
REPORTED = {
    "gptq": {"method": "gptq", "bits": 4, "summary": "gptq 4-bit"},
    "awq": {"method": "awq", "bits": 4, "summary": "awq 4-bit"},
    "bnb-8bit": {"method": "bitsandbytes", "bits": 8, "summary": "bitsandbytes 8-bit"},
    "bnb-4bit": {"method": "bitsandbytes", "bits": 4, "summary": "bitsandbytes 4-bit (nf4)"},
}
# What discovery calls each (modelhub/discovery/cache_tree.py quantization()).
DISCOVERED = {"gptq": "GPTQ", "awq": "AWQ", "bnb-8bit": "bitsandbytes 8-bit", "bnb-4bit": "bitsandbytes 4-bit"}
# The layer class each loads into: the quantized kernels really ran (gptqmodel's CPU kernels, bitsandbytes').
LAYERS = {"gptq": "TorchAtenLinear", "awq": "TorchAtenAwqLinear", "bnb-8bit": "Linear8bitLt", "bnb-4bit": "Linear4bit"}


@pytest.fixture(scope="session")
def quantized(tmp_path_factory, tiny_models):
    """``{"source": dir, "gptq": dir, "awq": dir, "bnb-8bit": dir, "bnb-4bit": dir}``, built once per session
    (about 12 s; 30 s on a machine where gptqmodel first compiles its CPU extension)."""
    from tests.quantized_models import build_all

    return build_all(tmp_path_factory.mktemp("quantized"), tiny_models["llama"])


@pytest.mark.parametrize("kind", ["gptq", "awq", "bnb-8bit", "bnb-4bit"])
def test_a_quantized_checkpoint_is_found_loaded_and_measured(loader, quantized, kind, tmp_path, monkeypatch):
    disk = tmp_path / "disk2"
    shutil.copytree(quantized[kind], disk / "tiny" / f"llama-{kind}")
    monkeypatch.setenv("MODELHUB_SECONDARY_CACHE", str(disk))
    name = f"tiny/llama-{kind}"
    scan(loader.client)
    model = loader.client.get(f"/api/models/{name}").json
    assert (model["cache_location"], model["quantization"]) == ("secondary", DISCOVERED[kind])

    attempt = loader.load_and_wait(name)

    assert attempt["outcome"] == "success", attempt
    assert loader.status(name) == "compatible"
    report = attempt["load_report"]
    assert report["quantization"] == REPORTED[kind]
    assert report["loading_info"]["missing"]["count"] == report["loading_info"]["unexpected"]["count"] == 0
    assert attempt["smoke_test"]["new_tokens"] > 0
    assert attempt["predicted_peak"]["plan"]["quantization"] == {"gptq": "gptq", "awq": "awq"}.get(kind, "bitsandbytes")
    assert attempt["predicted_peak"]["plan"]["weight_bits"] == REPORTED[kind]["bits"]
    assert {"gptq": {"optimum", "gptqmodel"}, "awq": {"gptqmodel", "accelerate"}}.get(
        kind, {"bitsandbytes", "accelerate"}) == set(attempt["predicted_peak"]["plan"]["packages"])
    if kind in ("gptq", "awq"):
        through = "optimum 2.3.0 and gptqmodel 7.6.0" if kind == "gptq" else "gptqmodel 7.6.0 and accelerate 1.15.0"
        notes = [note for change in attempt["plugin_changes"] for note in change.get("notes", [])]
        assert f"{kind.upper()} checkpoint (4-bit): loaded through {through}." in notes
    loader.client.post(f"/api/models/{name}/unload")

    measured = measure(loader, name)

    assert measured["outcome"] == "success", measured
    results = measured["results"]
    for value in (results["time_to_first_token"]["avg_latency_ms"], results["throughput"]["best_tokens_per_sec"],
                  results["perplexity"]["perplexity"], results["load_seconds"]):
        assert math.isfinite(value) and value > 0
    model = loader.client.get(f"/api/models/{name}").json
    assert model["perplexity"] == round(results["perplexity"]["perplexity"], 3)
    assert model["max_throughput_tokens_sec"] == round(results["throughput"]["best_tokens_per_sec"], 3)
    assert model["metric_sources"]["perplexity"]["measurement_id"] == measured["id"]


# What the refusal says: "<name> is <what>; ... <missing> ... not installed ... <install>".
REFUSALS = {
    ("awq", "gptqmodel"): ("is an AWQ checkpoint; loading it needs gptqmodel and accelerate",
                           "pip install 'modelhub[gptq]'"),
    ("awq", "accelerate"): ("is an AWQ checkpoint; loading it needs gptqmodel and accelerate",
                            "pip install accelerate==1.15.0"),
    ("gptq", "gptqmodel"): ("is a GPTQ checkpoint; loading it needs optimum and gptqmodel", "pip install 'modelhub[gptq]'"),
    ("bnb-4bit", "bitsandbytes"): ("is a bitsandbytes 4-bit checkpoint (saved quantized), which needs the bitsandbytes",
                                   "pip install bitsandbytes==0.50.2"),
}


@pytest.mark.parametrize("kind, missing", list(REFUSALS))
def test_without_its_package_a_checkpoint_is_refused_before_its_weights_are_read(loader, quantized, kind, missing):
    name = f"tiny/llama-{kind}"
    # The test plugin hides the package in the worker (sys.modules[name] = None), as on a machine without it.
    loader.register(name, quantized[kind], load_config={"fault_hide_package": missing})

    attempt = loader.load_and_wait(name)

    assert attempt["outcome"] == "failure", attempt
    assert (attempt["failure_kind"], attempt["error_type"]) == ("missing_package", "LoadRefused")
    what, install = REFUSALS[kind, missing]
    message = attempt["error_message"]
    assert f"{name} {what}" in message and "not installed" in message and install in message
    assert attempt["load_report"] is None and attempt["final_kwargs"] is None  # stopped before from_pretrained
    assert loader.status(name) == "incompatible"  # in this environment; installing the package makes a new one


def test_preflight_says_an_awq_checkpoint_cannot_load_without_gptqmodel(loader, quantized):
    loader.register("tiny/llama-awq", quantized["awq"])
    here = loader.client.get("/api/models/tiny/llama-awq/preflight").json
    assert here["verdict"] == "fits" and here["problems"] == []
    app = loader.app
    with app.app_context():
        row = db.session.execute(db.select(ModelRegistry).filter_by(model_name="tiny/llama-awq")).scalar_one()
        without = preflight.check(app, row, host={**host_facts.facts(app), "packages": {"gptqmodel": None}})
    assert without["verdict"] == "cannot_load"
    assert [(p["kind"], p["package"]) for p in without["problems"]] == [("missing_package", "gptqmodel")]
    assert "An AWQ checkpoint" in without["reason"] and "pip install 'modelhub[gptq]'" in without["reason"]
