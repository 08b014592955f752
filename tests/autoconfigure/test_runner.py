"""Auto-configure end to end with real loads of tiny models: each failure provoked for real in a worker
process (the test plugins), the search's next config chosen from its cause, the chain recorded."""

import json
import shutil

# The real text PyTorch's SDPA raises on ROCm when no fused kernel fits (transformers #30056 / PyTorch #116176).
SDPA_ON_ROCM = "RuntimeError: HIP error: invalid device function\nHIP kernel errors might be asynchronously reported"


def test_an_attention_failure_ends_in_eager_attention_with_the_users_other_settings_kept(searcher, tiny_models):
    searcher.register("llama", tiny_models["llama"], load_config={"fault_attention": SDPA_ON_ROCM, "revision": "main"})
    started = searcher.autoconfigure("llama")
    assert started.status_code == 202, started.json
    assert started.json["state"] == "running"

    run = searcher.wait_for_run("llama")

    assert run["state"] == "succeeded", run
    assert run["result_config"] == {"fault_attention": SDPA_ON_ROCM, "revision": "main", "attn_implementation": "eager"}
    assert run["result_status"] == "compatible"
    first, second = run["tries"]
    assert (first["outcome"], first["kind"]) == ("failure", "attention")
    assert second["outcome"] == "success" and second["changes"] == {"attn_implementation": "eager"}
    assert "eager" in second["why"]
    # Proposed, not applied: the saved config is as it was, and the diff says what applying changes.
    assert run["applied_version"] is None
    assert run["proposed_diff"]["added"] == [{"key": "attn_implementation", "value": "eager"}]
    model = searcher.client.get("/api/models/llama").json
    assert json.loads(model["load_config"]) == {"fault_attention": SDPA_ON_ROCM, "revision": "main"}
    assert model["compatibility_status"] == "compatible"
    # Each try is a normal load attempt, linked to the run; the host is left as it was (unloaded).
    attempts = searcher.attempts("llama")
    assert [a["autoconfigure_run_id"] for a in attempts["items"]] == [run["id"], run["id"]]
    assert [a["outcome"] for a in attempts["items"]] == ["success", "failure"]
    assert attempts["load_state"]["state"] == "idle"


def test_applying_the_result_makes_it_a_load_config_version_that_can_be_rolled_back(searcher, tiny_models):
    searcher.register("llama", tiny_models["llama"], load_config={"fault_attention": SDPA_ON_ROCM})
    run = (searcher.autoconfigure("llama"), searcher.wait_for_run("llama"))[1]

    applied = searcher.client.post(f"/api/autoconfigure-runs/{run['id']}/apply")

    assert applied.status_code == 201, applied.json
    version = applied.json["applied_version"]
    history = searcher.client.get("/api/models/llama/configs").json["items"]
    assert (history[0]["number"], history[0]["source"]) == (version, "auto-configure")
    assert json.loads(searcher.client.get("/api/models/llama").json["load_config"])["attn_implementation"] == "eager"
    again = searcher.client.post(f"/api/autoconfigure-runs/{run['id']}/apply")
    assert again.status_code == 409 and "applied already" in again.json["message"]
    # The version before is one restore away.
    restored = searcher.client.post(f"/api/models/llama/configs/{version - 1}/restore")
    assert restored.status_code == 201, restored.json


def test_with_apply_the_config_that_loads_is_saved_at_once(searcher, tiny_models):
    searcher.register("llama", tiny_models["llama"], load_config={"fault_attention": SDPA_ON_ROCM})
    searcher.autoconfigure("llama", apply=True)
    run = searcher.wait_for_run("llama")
    assert run["applied_version"] is not None
    assert json.loads(searcher.client.get("/api/models/llama").json["load_config"]) == run["result_config"]


def test_when_nothing_loads_the_model_is_incompatible_here_with_the_chain_of_causes(searcher, tiny_models):
    # Out of memory whatever the config: every memory fallback is tried once, none twice, and the search ends.
    searcher.register("llama", tiny_models["llama"], load_config={"fault_oom": True})
    searcher.autoconfigure("llama", max_tries=6)

    run = searcher.wait_for_run("llama", timeout=400)

    assert run["state"] == "failed", run
    assert run["result_status"] == "incompatible"
    tried = [entry for entry in run["tries"] if entry["outcome"] != "skipped"]
    assert 2 <= len(tried) <= 6
    assert all(entry["outcome"] == "failure" and entry["kind"] == "out_of_memory" for entry in tried)
    configs = [json.dumps(entry["config"], sort_keys=True) for entry in tried]
    assert len(configs) == len(set(configs))  # never the same config twice
    assert "try 1:" in run["result_reason"] and "try 2:" in run["result_reason"]
    assert searcher.status("llama") == "incompatible"
    latest = searcher.attempts("llama")["items"][0]
    assert latest["environment_status"] == "incompatible"


def test_a_crashing_try_is_recorded_and_the_search_goes_on(searcher, tiny_models):
    searcher.register("llama", tiny_models["llama"], load_config={"fault_crash": "exit"})
    searcher.autoconfigure("llama", max_tries=3)
    run = searcher.wait_for_run("llama", timeout=300)
    first = run["tries"][0]
    assert (first["outcome"], first["kind"]) == ("failure", "crash")
    assert "exit" in first["cause"] or "ended without reporting" in first["cause"]
    assert run["state"] == "failed"  # every later try crashes as well: the fault is in every config


def test_a_second_run_while_one_runs_is_refused_and_stop_cuts_the_try_short(searcher, tiny_models):
    searcher.register("llama", tiny_models["llama"], load_config={"fault_hang_seconds": 60})
    assert searcher.autoconfigure("llama").status_code == 202
    searcher.wait_for_stage("llama", "loading")

    second = searcher.autoconfigure("llama")
    assert second.status_code == 409 and "already running" in second.json["message"]

    stopped = searcher.client.delete("/api/models/llama/autoconfigure")
    assert stopped.status_code == 200 and stopped.json["stop_requested"] is True
    run = searcher.wait_for_run("llama", timeout=60)
    assert run["state"] == "stopped", run
    assert searcher.attempts("llama")["items"][0]["outcome"] == "interrupted"
    assert searcher.status("llama") == "unknown"  # as it was: a stopped search is no verdict
    assert searcher.client.delete("/api/models/llama/autoconfigure").status_code == 409


def test_bad_requests_are_refused_with_per_field_messages(searcher, tiny_models):
    searcher.register("llama", tiny_models["llama"])
    for body, field in (({"max_tries": 0}, "max_tries"), ({"max_tries": "3"}, "max_tries"),
                        ({"max_seconds": 1}, "max_seconds"), ({"apply": "yes"}, "apply"), ({"nope": 1}, "nope")):
        answer = searcher.autoconfigure("llama", **body)
        assert answer.status_code == 422, (body, answer.json)
        assert field in answer.json["errors"]["json"], answer.json
    assert searcher.autoconfigure("nobody").status_code == 404
    assert searcher.client.get("/api/autoconfigure-runs/999999").status_code == 404
    assert searcher.client.get("/api/models/llama/autoconfigure").json == {"items": []}


def test_no_bf16_here_ends_in_float16(searcher, tiny_models):
    searcher.register("llama", tiny_models["llama"], load_config={"fault_bf16_unsupported": True, "dtype": "bfloat16"})
    searcher.autoconfigure("llama")
    run = searcher.wait_for_run("llama")
    assert run["state"] == "succeeded", run
    assert run["result_config"]["dtype"] == "float16"
    first = run["tries"][0]
    assert (first["outcome"], first["kind"]) == ("failure", "bf16_unsupported")
    assert "bfloat16" in first["cause"] or "bf16" in first["cause"]


def test_a_missing_package_drops_that_quantization_and_says_what_to_install(searcher, tiny_models):
    start = {"fault_hide_package": "bitsandbytes", "quantization_config": {"load_in_8bit": True}}
    searcher.register("llama", tiny_models["llama"], load_config=start)
    searcher.autoconfigure("llama")
    run = searcher.wait_for_run("llama")
    assert run["state"] == "succeeded", run
    assert "quantization_config" not in run["result_config"]
    first = run["tries"][0]
    assert (first["outcome"], first["kind"]) == ("failure", "missing_package")
    assert "pip install bitsandbytes" in first["cause"]
    assert "bitsandbytes" in run["tries"][-1]["why"]


def test_a_refused_setting_stops_the_search_and_says_so(searcher, tiny_models, tmp_path):
    # Pickle weights only: loading them runs code, which only the user may allow (allow_pickle_weights).
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_models["llama"], folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    searcher.register("llama", folder)
    searcher.autoconfigure("llama")
    run = searcher.wait_for_run("llama")
    assert run["state"] == "failed", run
    assert len([t for t in run["tries"] if t["outcome"] != "skipped"]) == 1  # never turned on for the user
    assert run["tries"][0]["kind"] == "refused"
    assert "allow_pickle_weights" in run["result_reason"]


def test_a_worker_memory_limit_the_model_does_not_fit_in_is_out_of_memory_and_the_search_ends(
        database_url, tmp_path, with_test_plugins, tiny_models):
    from modelhub.app import create_app
    from tests.autoconfigure.conftest import Searcher

    # 300 MiB of private memory: less than torch, transformers and the weights need together.
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "MODELHUB_LOAD_TIMEOUT": 120,
                      "MODELHUB_HOME": str(tmp_path / "home"), "MODELHUB_WORKER_MEMORY_LIMIT": 300 * 2**20})
    searcher = Searcher(app)
    try:
        searcher.register("llama", tiny_models["llama"])
        searcher.autoconfigure("llama", max_tries=4)
        run = searcher.wait_for_run("llama", timeout=300)
    finally:
        app.extensions["modelhub.supervisor"].shutdown()
    first = run["tries"][0]
    assert (first["outcome"], first["kind"]) == ("failure", "out_of_memory"), first
    assert run["state"] in ("failed", "succeeded")
    tried = [json.dumps(t["config"], sort_keys=True) for t in run["tries"] if t["outcome"] != "skipped"]
    assert len(tried) == len(set(tried)) <= 4
    if run["state"] == "failed":
        assert run["result_status"] == "incompatible" and "try 1:" in run["result_reason"]
