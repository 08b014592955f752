"""check(), marks() and predict_peak() on registered models with real files, against this host's
figures (the worker memory limit makes the verdicts) or host facts the test chooses."""

import time

import pytest

from modelhub import preflight
from modelhub.extensions import db
from modelhub.models import ModelRegistry
from modelhub.preflight import host as host_facts
from tests.preflight.conftest import host

KEYS = {"model_name", "load_config", "config_source", "context_tokens", "verdict", "reason", "devices", "total_bytes",
        "raw_total_bytes", "calibration", "problems", "fitting_config", "fitting_reason", "notes", "metadata", "host",
        "copy"}


def check(app, model_id, *args, **kwargs):
    with app.app_context():
        return preflight.check(app, db.session.get(ModelRegistry, model_id), *args, **kwargs)


def limited(app, limit):
    app.config["MODELHUB_WORKER_MEMORY_LIMIT"] = limit
    host_facts.forget(app)


def test_the_answer_shows_every_term_and_the_models_metadata(app, register, tiny_models):
    model_id = register("org/llama", tiny_models["llama"], {"dtype": "bfloat16"})
    answer = check(app, model_id)
    assert set(answer) == KEYS
    assert answer["config_source"] == "saved" and answer["load_config"] == {"dtype": "bfloat16"}
    assert answer["verdict"] == "fits"
    (cpu,) = answer["devices"]
    assert [term["name"] for term in cpu["terms"]] == ["overhead", "weights", "kv_cache", "activations"]
    assert cpu["needed_bytes"] == sum(term["bytes"] for term in cpu["terms"]) == answer["total_bytes"]
    assert answer["metadata"]["parameters"] == 210240 and answer["metadata"]["dtype"] == "float32"
    assert answer["context_tokens"] == 256  # the tiny model's max_position_embeddings bounds the context
    assert answer["host"]["ram_available_bytes"] > 0


def test_fits_tight_and_wont_fit_against_the_worker_memory_limit(app, register, tiny_models):
    model_id = register("org/llama", tiny_models["llama"])
    needed = check(app, model_id)["total_bytes"]
    limited(app, needed * 2)
    assert check(app, model_id)["verdict"] == "fits"
    limited(app, int(needed * 1.05))
    tight = check(app, model_id)
    assert tight["verdict"] == "tight" and "headroom" in tight["reason"]
    assert tight["devices"][0]["available_bytes"] == int(needed * 1.05)
    limited(app, needed // 2)
    wont = check(app, model_id)
    assert wont["verdict"] == "wont_fit" and "too much" in wont["reason"]
    assert wont["host"]["memory_limit_bytes"] == needed // 2


def test_a_config_that_would_fit_is_offered(app, register, tiny_models):
    model_id = register("org/llama", tiny_models["llama"])
    needed = check(app, model_id)["total_bytes"]
    weights = next(t["bytes"] for t in check(app, model_id)["devices"][0]["terms"] if t["name"] == "weights")
    limited(app, needed - weights // 3)  # too little for fp32, room for the same model spread to disk
    answer = check(app, model_id)
    assert answer["verdict"] == "wont_fit"
    assert answer["fitting_config"]["device_map"] == "auto" and "cpu" in answer["fitting_config"]["max_memory"]
    assert "offloaded to disk" in answer["fitting_reason"]
    given = check(app, model_id, answer["fitting_config"])
    assert given["config_source"] == "given" and given["verdict"] in ("fits", "tight")


def test_a_missing_package_cannot_load_and_says_which(app, register, tiny_models):
    model_id = register("org/llama", tiny_models["llama"], {"quantization_config": {"load_in_4bit": True}})
    answer = check(app, model_id, host=host(packages={"bitsandbytes": None}))
    assert answer["verdict"] == "cannot_load"
    assert answer["problems"] == [{"kind": "missing_package", "package": "bitsandbytes",
                                   "message": answer["problems"][0]["message"]}]
    assert "pip install bitsandbytes" in answer["reason"]
    assert answer["fitting_config"] == {}  # the same model without quantization fits
    assert "bitsandbytes (not installed here)" in answer["fitting_reason"]


def test_no_local_files_is_unknown_with_the_reason(app, register):
    model_id = register("org/elsewhere", None)
    answer = check(app, model_id)
    assert answer["verdict"] == "unknown" and "No local files" in answer["reason"]
    assert answer["devices"] == [] and answer["metadata"] is None


def test_marks_give_each_card_a_verdict(app, register, tiny_models):
    ids = [register("org/llama", tiny_models["llama"]), register("org/gone", None)]
    with app.app_context():
        rows = [db.session.get(ModelRegistry, model_id) for model_id in ids]
        marks = preflight.marks(app, rows)
    assert marks[ids[0]]["verdict"] == "fits" and marks[ids[1]]["verdict"] == "unknown"
    assert set(marks[ids[0]]) == {"verdict", "reason"}


def test_predict_peak_is_the_smoke_tests_peak_and_never_raises(app, register, tiny_models):
    model_id = register("org/llama", tiny_models["llama"])
    with app.app_context():
        row = db.session.get(ModelRegistry, model_id)
        eight = {"quantization_config": {"load_in_8bit": True}}
        predicted = preflight.predict_peak(app, row, eight)
        assert set(predicted) == {"host_bytes", "gpu_bytes", "raw_host_bytes", "verdict", "plan"}
        assert predicted["plan"]["kind"] == "bnb_8bit/cpu" and predicted["gpu_bytes"] is None
        # the smoke test's 16 tokens, not the check's context: no more than the check's figure
        assert predicted["host_bytes"] == predicted["raw_host_bytes"] <= check(app, model_id, eight)["total_bytes"]
        row.cache_path = None
        assert preflight.predict_peak(app, row, {}) is None
        assert preflight.predict_peak(app, row, {"dtype": object()}) is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_marks_of_a_thousand_models_take_under_5_ms_each(app, tiny_models, sharded_llama):
    with app.app_context():
        rows = [ModelRegistry(id=index, model_name=f"m{index}", hf_path=f"m{index}",
                              cache_path=str(sharded_llama if index % 2 else tiny_models["llama"]))
                for index in range(1000)]
        preflight.marks(app, rows[:2])  # headers read once; the page after that reads them from the cache
        started = time.perf_counter()
        marks = preflight.marks(app, rows)
        per_model = (time.perf_counter() - started) / len(rows)
    assert {mark["verdict"] for mark in marks.values()} == {"fits"}
    assert per_model < 0.005, f"{per_model * 1000:.2f} ms per model"
