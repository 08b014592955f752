"""GGUF copies loaded for real through the API (real workers, transformers' gguf_file): several quant types,
the dtype they are dequantized to (and a load_config's dtype honoured), the files transformers cannot load
refused before any weight is read with what it does load, an Ollama blob (no .gguf suffix) found by a scan,
and the choice between a model's safetensors folder and its GGUF file."""

import shutil
import time

import pytest

from tests.discovery.test_scan_api import scan
from tests.discovery.trees import add_ollama

pytestmark = pytest.mark.slow
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _gguf_of(attempt) -> dict:
    assert attempt["outcome"] == "success", attempt
    assert attempt["smoke_test"]["new_tokens"] > 0  # the tokenizer came from the file too
    return attempt["load_report"]["gguf"]


def test_gguf_files_load_dequantized_and_record_it(loader, gguf_model_files):
    for label in ("Q8_0", "Q4_0"):
        path = gguf_model_files.files[label]
        loader.register(f"tiny/qwen2-{label}", path)
        attempt = loader.load_and_wait(f"tiny/qwen2-{label}")
        assert _gguf_of(attempt) == {"file": str(path), "quantization": label, "dequantized_to": "float32"}
        assert attempt["copy_path"] == str(path)
        assert attempt["final_kwargs"]["gguf_file"] == path.name
        assert attempt["load_report"]["dtype"] == "float32" and attempt["load_report"]["model_class"] == "Qwen2ForCausalLM"
        assert attempt["load_report"]["quantization"]["summary"] == f"GGUF {label}, dequantized to float32"
        assert any(change["plugin"] == "gguf" for change in attempt["plugin_changes"])
        assert loader.status(f"tiny/qwen2-{label}") == "compatible"


@SQLITE_ONLY
def test_a_load_configs_dtype_is_what_the_file_is_dequantized_to(loader, gguf_model_files):
    loader.register("tiny/qwen2-f16", gguf_model_files.files["F16"])
    assert _gguf_of(loader.load_and_wait("tiny/qwen2-f16"))["dequantized_to"] == "float32"  # even from F16
    response = loader.client.patch("/api/models/tiny/qwen2-f16/config", json={"load_config": {"dtype": "bfloat16"}})
    assert response.status_code == 200, response.json
    attempt = loader.load_and_wait("tiny/qwen2-f16")
    assert _gguf_of(attempt)["dequantized_to"] == "bfloat16" and attempt["load_report"]["dtype"] == "bfloat16"


@SQLITE_ONLY
@pytest.mark.parametrize("which, said", [
    ("unsupported_architecture", "does not load GGUF files of architecture 'command-r'; it loads bloom, falcon"),
    ("unsupported_type", "cannot dequantize Q1_0 tensors (this file is Q1_0); for 'qwen2' it dequantizes BF16, F16"),
])
def test_a_file_transformers_cannot_load_is_refused_before_any_weight_is_read(loader, gguf_model_files, which, said):
    path = getattr(gguf_model_files, which)
    loader.register("tiny/odd", path)
    attempt = loader.load_and_wait("tiny/odd")
    assert attempt["outcome"] == "failure"
    assert attempt["error_type"] == "LoadRefused" and attempt["failure_kind"] == "refused"
    assert attempt["error_message"].startswith(f"The GGUF file {path} cannot be loaded: ")
    assert said in attempt["error_message"] and attempt["explanation"] == attempt["error_message"]
    # Refused while the kwargs were built: the worker never reached the loading stage.
    assert attempt["final_kwargs"] is None and attempt["load_report"] is None and attempt["measured_peak"] is None
    assert attempt["copy_path"] == str(path)


@SQLITE_ONLY
def test_bitsandbytes_on_a_gguf_file_is_refused_with_a_suggestion(loader, gguf_model_files):
    loader.register("tiny/qwen2", gguf_model_files.files["Q8_0"], load_config={"load_in_8bit": True})
    attempt = loader.load_and_wait("tiny/qwen2")
    assert attempt["outcome"] == "failure" and attempt["failure_kind"] == "refused"
    assert "cannot quantize it again with bitsandbytes (load_in_8bit)" in attempt["error_message"]
    assert attempt["suggestion"] == {"load_in_8bit": None}


@SQLITE_ONLY
def test_an_ollama_blob_found_by_a_scan_loads(loader, gguf_model_files, tmp_path, monkeypatch):
    models = tmp_path / "ollama"
    blob = add_ollama(models, "tiny-qwen2:q8", gguf_model_files.files["Q8_0"])
    monkeypatch.setenv("MODELHUB_OLLAMA_MODELS", str(models))
    monkeypatch.setenv("MODELHUB_LIBRARIES", "ollama")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    before = sorted(path.name for path in blob.parent.iterdir())
    assert scan(loader.client)["state"] == "finished"
    (name,) = [model["model_name"] for model in loader.client.get("/api/models").json["items"]]
    (copy,) = loader.client.get(f"/api/models/{name}/copies").json
    assert copy["path"] == str(blob) and not blob.name.endswith(".gguf")

    attempt = loader.load_and_wait(name)
    assert _gguf_of(attempt) == {"file": str(blob), "quantization": "Q8_0", "dequantized_to": "float32"}
    assert attempt["copy_path"] == str(blob)
    assert sorted(path.name for path in blob.parent.iterdir()) == before  # Ollama's folder left as it was


@SQLITE_ONLY
def test_a_model_with_a_safetensors_folder_and_a_gguf_file_loads_the_copy_asked_for(
        loader, gguf_model_files, tmp_path):
    folder = shutil.copytree(gguf_model_files.source, tmp_path / "tiny-qwen2")
    gguf = shutil.copy(gguf_model_files.files["Q4_0"], folder / "tiny-qwen2.Q4_0.gguf")
    loader.register("tiny/qwen2", folder)
    copies = {copy["weight_format"]: copy for copy in loader.client.get("/api/models/tiny/qwen2/copies").json}
    assert copies["gguf"]["path"] == str(gguf) and copies["safetensors"]["path"] == str(folder)

    default = loader.load_and_wait("tiny/qwen2")
    assert default["outcome"] == "success" and default["copy_path"] == str(folder)
    assert "gguf" not in default["load_report"] and default["final_kwargs"]["use_safetensors"] is True

    asked = loader.load_and_wait("tiny/qwen2", copy_id=copies["gguf"]["id"])
    assert _gguf_of(asked) == {"file": str(gguf), "quantization": "Q4_0", "dequantized_to": "float32"}
    assert asked["copy_path"] == str(gguf)
    # Q4_0 rounds every weight: the same prompt continues otherwise than from the folder's float32 weights.
    assert asked["smoke_test"]["token_ids"] != default["smoke_test"]["token_ids"]


@SQLITE_ONLY
def test_a_gguf_copy_is_measured(loader, gguf_model_files):
    loader.register("tiny/qwen2", gguf_model_files.files["Q8_0"])
    quick = {"time_to_first_token": {"prompt_lengths": [8], "repeats": 1, "warmup": 0},
             "throughput": {"new_tokens": 4, "batch_sizes": [1], "repeats": 1, "warmup": 0}}
    assert loader.client.post("/api/models/tiny/qwen2/benchmark", json={"settings": quick}).status_code == 202
    deadline = time.monotonic() + 120
    while (latest := loader.client.get("/api/models/tiny/qwen2/measurements").json[0])["outcome"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert latest["outcome"] == "success", latest
    assert latest["copy_path"] == str(gguf_model_files.files["Q8_0"])
    assert latest["results"]["perplexity"]["perplexity"] > 1

