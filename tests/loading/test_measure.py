"""Measuring through POST /api/models/{name}/benchmark: real figures from a worker, stored with their
provenance, the history kept; a failed measurement changes no metric."""

import math
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

QUICK = {"time_to_first_token": {"prompt_lengths": [16], "repeats": 2, "warmup": 1},
         "throughput": {"new_tokens": 8, "batch_sizes": [1, 2], "repeats": 2, "warmup": 1}}


def measure(loader, name, **options) -> dict:
    response = loader.client.post(f"/api/models/{name}/benchmark", json={"settings": QUICK, **options})
    assert response.status_code == 202, response.json
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        latest = loader.client.get(f"/api/models/{name}/measurements").json[0]
        if latest["outcome"] != "running":
            return latest
        time.sleep(0.1)
    raise AssertionError("the measurement did not finish")


def test_a_measurement_becomes_the_models_metrics_with_provenance(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"], load_config={"torch_dtype": "float32"},
                    mmlu_score=45.0, compatibility_notes="mine")
    first = measure(loader, "tiny/llama")

    assert first["outcome"] == "success", first
    results = first["results"]
    for value in (results["time_to_first_token"]["avg_latency_ms"], results["throughput"]["best_tokens_per_sec"],
                  results["throughput"]["batch1_tokens_per_sec"], results["perplexity"]["perplexity"],
                  results["load_seconds"], results["peak_memory"]["host_peak_rss_bytes"]):
        assert math.isfinite(value) and value > 0
    assert results["settings"]["throughput"]["new_tokens"] == 8
    assert first["final_kwargs"]["dtype"] == "float32" and first["load_config"] == '{"torch_dtype": "float32"}'
    assert first["environment"]["torch"].startswith("2.13")

    model = loader.client.get("/api/models/tiny/llama").json
    assert model["avg_latency_ms"] == round(results["time_to_first_token"]["avg_latency_ms"], 3)
    assert model["max_throughput_tokens_sec"] == round(results["throughput"]["best_tokens_per_sec"], 3)
    assert model["perplexity"] == round(results["perplexity"]["perplexity"], 3)
    source = model["metric_sources"]["perplexity"]
    assert source["source"] == "measured" and source["measurement_id"] == first["id"]
    assert model["mmlu_score"] == 45.0 and model["compatibility_notes"] == "mine"
    assert loader.attempts("tiny/llama")["load_state"] == {"state": "idle"}  # a measurement does not stay loaded

    loader.client.patch("/api/models/tiny/llama/config", json={"load_config": {"torch_dtype": "bfloat16"}})
    second = measure(loader, "tiny/llama")
    history = loader.client.get("/api/models/tiny/llama/measurements").json
    assert [m["id"] for m in history] == [second["id"], first["id"]]  # both kept, newest first
    assert second["final_kwargs"]["dtype"] == "bfloat16"


def test_a_failed_measurement_changes_no_metric(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"], perplexity=12.5, load_config={"fault_oom": True})
    failed = measure(loader, "tiny/llama")
    assert failed["outcome"] == "failure"
    assert failed["error_type"] == "OutOfMemoryError"
    model = loader.client.get("/api/models/tiny/llama").json
    assert model["perplexity"] == 12.5 and model["metric_sources"] is None


def test_unknown_measurement_settings_are_refused(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"])
    response = loader.client.post("/api/models/tiny/llama/benchmark", json={"settings": {"speed": {}}})
    assert response.status_code == 422
    assert response.json["errors"]["json"]["settings"]["speed"] == [
        "Unknown measurement; known: time_to_first_token, throughput, perplexity."
    ]


def test_the_modal_shows_measured_values_and_the_history(loader, tiny_models):
    loader.register("tiny/llama", tiny_models["llama"])
    done = measure(loader, "tiny/llama")
    html = loader.client.get("/models/tiny/llama/details").text
    assert f"measured here {done['finished_at'][:16].replace('T', ' ')} UTC (measurement {done['id']})" in html
    assert 'class="attempts-table measurements-table"' in html and "success" in html

    started = loader.client.post("/models/tiny/llama/benchmark")  # the modal's Measure button
    assert started.status_code == 200 and "Measuring…" in started.text and 'hx-trigger="load delay:1s"' in started.text
    measure_wait = time.monotonic() + 120
    while "Measuring…" in loader.client.get("/models/tiny/llama/measurements").text:
        assert time.monotonic() < measure_wait
        time.sleep(0.2)
