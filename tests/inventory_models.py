"""A registry of realistic models for the inventory's tests: names as the Hub writes them, copies spread over
the HF cache, LM Studio, Ollama, text-generation-webui and a second disk (safetensors, GPTQ, AWQ and GGUF
quantizations, with sizes that follow the parameter count), some copies missing, and load attempts on two
hosts for about a third of the models. Written with plain inserts, so a test, a live server's database and
bench/page.py can all be filled the same way, quickly."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, insert, select, text

from modelhub.models import Environment, LoadAttempt, ModelCopy, ModelRegistry

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SECOND_DISK = "/mnt/d/models"
# (organisation, name, parameters, architecture)
FAMILIES = [
    ("meta-llama", "Llama-3.1-8B-Instruct", 8_030_261_248, "LlamaForCausalLM"),
    ("Qwen", "Qwen2.5-7B-Instruct", 7_615_616_512, "Qwen2ForCausalLM"),
    ("mistralai", "Mistral-7B-Instruct-v0.3", 7_248_023_552, "MistralForCausalLM"),
    ("microsoft", "Phi-3-mini-4k-instruct", 3_821_079_552, "Phi3ForCausalLM"),
    ("google", "gemma-2-9b-it", 9_241_705_984, "Gemma2ForCausalLM"),
    ("HuggingFaceTB", "SmolLM2-1.7B-Instruct", 1_711_376_384, "LlamaForCausalLM"),
    ("TinyLlama", "TinyLlama-1.1B-Chat-v1.0", 1_100_048_384, "LlamaForCausalLM"),
    ("Qwen", "Qwen2.5-0.5B-Instruct", 494_032_768, "Qwen2ForCausalLM"),
]
GGUF_QUANTS = [("Q4_K_M", 0.60), ("Q8_0", 1.06), ("Q5_K_M", 0.71), ("Q6_K", 0.82)]
STATUSES = ("unknown", "compatible", "incompatible", "degraded")
HOSTS = ("gpu-box", "laptop")


def rows(count: int = 200) -> tuple[list[dict], list[dict], list[dict]]:
    """(models, copies, attempts) for ``count`` models, ids from 1; attempts name ENVIRONMENTS 1 and 2."""
    models, copies, attempts = [], [], []
    for i in range(count):
        org, name, params, architecture = FAMILIES[i % len(FAMILIES)]
        model_id, variant = i + 1, i // len(FAMILIES)
        full = f"{org}/{name}" if variant == 0 else f"{org}/{name}-ft-{variant:03d}"
        tested = i % 3 == 0
        status = STATUSES[1 + (i // 3) % 3] if tested else "unknown"
        models.append({"id": model_id, "model_name": full, "hf_path": full, "compatibility_status": status,
                       "compatibility_notes": "Needs eager attention on ROCm; sdpa crashes the first load" if i % 7 == 0 else None,
                       "mmlu_score": 40 + (i * 7) % 40 if i % 2 == 0 else None,
                       "humaneval_score": 20 + (i * 3) % 50 if i % 5 == 0 else None,
                       "max_throughput_tokens_sec": 10 + i % 90 if i % 4 == 0 else None})
        slug = full.replace("/", "--")
        kind = i % 5
        if kind in (0, 1):  # the HF cache, safetensors in bf16 (2 bytes a parameter)
            copies.append(_copy(model_id, "primary", "huggingface", "/home/u/.cache/huggingface/hub",
                                f"/home/u/.cache/huggingface/hub/models--{slug}/snapshots/{'a1' * 20}",
                                params * 2, "safetensors", None, architecture, params))
        if kind in (1, 2):  # LM Studio: one or two GGUF quantizations
            for quant, ratio in GGUF_QUANTS[: 1 + (i % 2)]:
                copies.append(_copy(model_id, "secondary", "lmstudio", "/home/u/.lmstudio/models",
                                    f"/home/u/.lmstudio/models/{org}/{name}-GGUF/{name}.{quant}.gguf",
                                    int(params * ratio), "gguf", f"GGUF {quant}", architecture.removesuffix("ForCausalLM").lower(), params))
        if kind == 3:  # Ollama: one GGUF blob
            copies.append(_copy(model_id, "secondary", "ollama", "/home/u/.ollama/models",
                                f"/home/u/.ollama/models/blobs/sha256-{model_id:064x}", int(params * 0.6), "gguf",
                                "GGUF Q4_K_M", architecture.removesuffix("ForCausalLM").lower(), params, label=f"{name.lower()}:latest"))
        if kind == 4:  # a second disk: GPTQ (4-bit) folders, and text-generation-webui's AWQ ones
            copies.append(_copy(model_id, "secondary", "folder", SECOND_DISK, f"{SECOND_DISK}/{name}-GPTQ-{variant}",
                                params // 2, "safetensors", "GPTQ", architecture, params))
            if i % 2:
                copies.append(_copy(model_id, "secondary", "text-generation-webui", "/home/u/text-generation-webui/models",
                                    f"/home/u/text-generation-webui/models/{name}-AWQ-{variant}", params // 2, "safetensors",
                                    "AWQ", architecture, params, missing=i % 4 == 1))
        if tested:
            outcome = "failure" if status == "incompatible" else "success"
            started = NOW - timedelta(hours=1 + i * 5)
            attempts.append({"model_id": model_id, "outcome": outcome, "previous_status": "unknown",
                             "started_at": started, "finished_at": started + timedelta(seconds=40),
                             "environment_status": status, "environment_id": 1 + (i // 3) % 2})
    return models, copies, attempts


def _copy(model_id, location, library, root, path, size, weights, quantization, architecture, params,
          missing=False, label=None) -> dict:
    return {"model_id": model_id, "location": location, "library": library, "library_root": root, "path": path,
            "size_bytes": size, "weight_format": weights, "quantization": quantization, "architecture": architecture,
            "parameter_count": params, "missing": missing, "incomplete": False, "label": label}


ENVIRONMENTS = [
    {"fingerprint": "f" * 64, "host": "gpu-box", "facts": {
        "accelerator": {"devices": [{"name": "AMD Radeon RX 7900 XTX", "architecture": "gfx1100"}]},
        "runtime": "rocm6.4", "wsl": True, "libraries": {"transformers": "5.24.0"}}},
    {"fingerprint": "e" * 64, "host": "laptop", "facts": {"libraries": {"transformers": "5.24.0"}}},
]


def seed(connection, count: int = 200) -> None:
    """Insert ``count`` models with their copies and attempts (and the two environments) on ``connection``."""
    models, copies, attempts = rows(count)
    connection.execute(insert(Environment), ENVIRONMENTS)  # beside the one a server records for itself
    ids = [connection.scalar(select(Environment.id).where(Environment.fingerprint == e["fingerprint"])) for e in ENVIRONMENTS]
    attempts = [{**attempt, "environment_id": ids[attempt["environment_id"] - 1]} for attempt in attempts]
    connection.execute(insert(ModelRegistry), models)
    if copies:
        connection.execute(insert(ModelCopy), copies)
    if attempts:
        connection.execute(insert(LoadAttempt), attempts)
    if connection.dialect.name == "postgresql":  # ids were given: the sequences must go on after them
        for table in ("modelregistry",):
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))


def seed_url(url: str, count: int = 200) -> None:
    """``seed`` a database by its URL (a live server's), committed."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            seed(connection, count)
    finally:
        engine.dispose()
