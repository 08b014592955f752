"""Measure a loaded causal LM: time to first token, decode throughput, perplexity and peak memory.

Pure functions of ``(model, tokenizer)`` run in the load worker; each returns a JSON-serialisable dict
that records the settings it used. Prompts and the perplexity text come from the bundled public-domain
text (``modelhub.measuring.text``), so two runs on the same model measure the same thing. Decoding is
greedy throughout. torch is imported inside the functions, as in the worker: the server never imports it.
"""

import math
import statistics
import time

from modelhub.measuring import text as bundled

DEFAULT_PPL_MAX_LENGTH = 1024
THROUGHPUT_PROMPT_TOKENS = 32
DEFAULTS = {
    "time_to_first_token": {"prompt_lengths": (16, 64, 128), "repeats": 5, "warmup": 2},
    "throughput": {"new_tokens": 32, "batch_sizes": (1, 2, 4, 8), "repeats": 3, "warmup": 1},
    "perplexity": {"text": None, "max_length": None, "stride": None},
}


def time_to_first_token(model, tokenizer, prompt_lengths=(16, 64, 128), repeats=5, warmup=2) -> dict:
    """Median wall time of prefill plus the first generated token, per prompt length, in ms.

    Each run is ``generate(max_new_tokens=1)`` on the first N tokens of the bundled text: what a user
    waits before the first token appears, generate's own set-up included. ``avg_latency_ms`` is the
    median of the per-length medians: robust to one slow length, and it stays one of the measured
    lengths' values when there are an odd number of lengths.
    """
    per_length = {}
    for length in prompt_lengths:
        inputs = prompt_inputs(model, tokenizer, length, batch_size=1)
        for _ in range(warmup):
            _timed_generate(model, tokenizer, inputs, 1)
        times = [_timed_generate(model, tokenizer, inputs, 1)[0] for _ in range(repeats)]
        per_length[str(length)] = round(statistics.median(times) * 1000, 4)
    return {
        "avg_latency_ms": round(statistics.median(per_length.values()), 4),
        "per_length_ms": per_length,
        "settings": {"prompt_lengths": list(prompt_lengths), "repeats": repeats, "warmup": warmup,
                     "method": "generate(max_new_tokens=1), greedy; median of repeats"},
    }


def throughput(model, tokenizer, new_tokens=32, batch_sizes=(1, 2, 4, 8), repeats=3, warmup=1) -> dict:
    """Decode tokens per second at batch 1, and the best over growing batch sizes.

    Decode is separated from prefill by difference: for the same prompt, the median time of
    ``generate(max_new_tokens=N)`` minus that of ``generate(max_new_tokens=1)`` is the time of the
    last N-1 tokens, so the rate is ``(N-1) * batch / difference``. The two are timed alternately, so
    slow drifts in the machine's speed hit both. ``min_new_tokens=N`` keeps EOS from ending a row early.
    Batch sizes are tried in increasing order until one runs out of memory; that one is recorded under
    ``stopped`` and no larger one is tried.
    """
    if new_tokens < 2:
        raise ValueError("throughput needs new_tokens >= 2 (one token is prefill, the rest decode).")
    per_batch, stopped = {}, None
    for batch_size in sorted(set(batch_sizes) | {1}):
        try:
            per_batch[str(batch_size)] = _decode_rate(model, tokenizer, batch_size, new_tokens, repeats, warmup)
        except Exception as error:  # noqa: BLE001 - only out-of-memory ends the growth; others propagate
            if not is_out_of_memory(error):
                raise
            stopped = {"batch_size": batch_size, "error": f"{type(error).__name__}: {str(error)[:500]}"}
            _release_memory()
            break
    rates = {int(size): row["tokens_per_sec"] for size, row in per_batch.items() if row["tokens_per_sec"]}
    best = max(rates, key=rates.get) if rates else None
    return {
        "batch1_tokens_per_sec": rates.get(1),
        "best_tokens_per_sec": rates.get(best),
        "best_batch_size": best,
        "per_batch": per_batch,
        "stopped": stopped,
        "settings": {"new_tokens": new_tokens, "batch_sizes": list(batch_sizes), "repeats": repeats,
                     "warmup": warmup, "prompt_tokens": THROUGHPUT_PROMPT_TOKENS,
                     "method": "(median t(generate N) - median t(generate 1)) over (N-1)*batch tokens, greedy; "
                               "the fastest runs of each when noise makes that difference negative"},
    }


def _decode_rate(model, tokenizer, batch_size, new_tokens, repeats, warmup) -> dict:
    inputs = prompt_inputs(model, tokenizer, THROUGHPUT_PROMPT_TOKENS, batch_size)
    for _ in range(warmup):
        _timed_generate(model, tokenizer, inputs, new_tokens)
        _timed_generate(model, tokenizer, inputs, 1)
    full, first = [], []
    for _ in range(repeats):
        seconds, generated = _timed_generate(model, tokenizer, inputs, new_tokens)
        full.append(seconds)
        first.append(_timed_generate(model, tokenizer, inputs, 1)[0])
    if generated != new_tokens:
        raise RuntimeError(f"generate produced {generated} new tokens, not {new_tokens}.")
    decode_seconds = statistics.median(full) - statistics.median(first)
    if decode_seconds <= 0:
        # A few repeats on a busy CPU: a pause during the one-token runs can outweigh a short decode. The
        # fastest run of each is the one least disturbed, and N tokens always take longer than one.
        decode_seconds = min(full) - min(first)
    tokens = (new_tokens - 1) * batch_size
    return {
        "tokens_per_sec": round(tokens / decode_seconds, 4) if decode_seconds > 0 else None,
        "decode_seconds": round(decode_seconds, 6),
        "first_token_seconds": round(statistics.median(first), 6),
        "decoded_tokens": tokens,
    }


def perplexity(model, tokenizer, text=None, max_length=None, stride=None) -> dict:
    """Strided perplexity of fixed-length windows (Hugging Face's "Perplexity of fixed-length models").

    Windows of ``max_length`` tokens start every ``stride`` tokens; in each, only the tokens not scored
    by an earlier window are scored (the rest are context, label -100). Each window's mean NLL is
    weighted by the number of tokens it scored (counted after the model's one-token label shift, so the
    first window scores max_length - 1 and later ones exactly their new tokens), and
    ``perplexity = exp(total NLL / scored tokens)``. Defaults: ``max_length`` = the model's context
    length capped at 1024 (the work is about twice the text's tokens whatever the window, and a longer
    window is closer to real use), ``stride = max_length // 2``, text = the bundled text.
    """
    import torch

    max_length = max_length or min(context_length(model) or DEFAULT_PPL_MAX_LENGTH, DEFAULT_PPL_MAX_LENGTH)
    stride = stride or max(1, max_length // 2)
    if not 0 < stride <= max_length:
        raise ValueError(f"stride must be in 1..max_length ({max_length}), not {stride}.")
    source = f"bundled:{bundled.NAME}" if text is None else f"custom:{len(text)} chars"
    ids = tokenizer(bundled.TEXT if text is None else text, return_tensors="pt").input_ids
    seq_len = ids.size(1)
    nll_sum, scored, previous_end = 0.0, 0, 0
    with torch.inference_mode():
        for begin in range(0, seq_len, stride):
            end = min(begin + max_length, seq_len)
            window = ids[:, begin:end].to(_device(model))
            labels = window.clone()
            labels[:, : -(end - previous_end)] = -100
            count = int((labels[:, 1:] != -100).sum())
            if count:
                nll_sum += float(model(window, labels=labels).loss) * count
                scored += count
            previous_end = end
            if end == seq_len:
                break
    if not scored:
        raise ValueError("The text is too short to score: it needs at least two tokens.")
    return {"perplexity": math.exp(nll_sum / scored), "tokens": scored, "max_length": max_length,
            "stride": stride, "text": source}


def peak_memory() -> dict:
    """Peak memory of this process so far (the worker holds one model: the load's and the runs' peak).

    Host: ``VmHWM`` of /proc/self/status on Linux (``ru_maxrss`` survives fork and exec there, so a worker
    started by a big process would report that process's peak as its own); ``ru_maxrss`` elsewhere (bytes
    on macOS). GPU: ``torch.cuda.max_memory_allocated``.
    """
    result = {"host_peak_rss_bytes": _host_peak(), "gpu_peak_allocated_bytes": None}
    try:
        import torch

        if torch.cuda.is_available():
            result["gpu_peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
    except ImportError:
        pass
    return result


def _host_peak() -> int:
    import resource
    import sys

    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def measure_all(model, tokenizer, settings: dict | None = None) -> dict:
    """Every measurement above with ``settings`` (``{"throughput": {"new_tokens": 16}, ...}``) over the
    defaults; the result records the settings used and what the model ran on."""
    resolved = resolve_settings(settings)
    started = time.perf_counter()
    result = {
        "time_to_first_token": time_to_first_token(model, tokenizer, **resolved["time_to_first_token"]),
        "throughput": throughput(model, tokenizer, **resolved["throughput"]),
        "perplexity": perplexity(model, tokenizer, **resolved["perplexity"]),
    }
    result["peak_memory"] = peak_memory()
    for key in ("text", "max_length", "stride"):  # the values used; a custom text by its label only
        resolved["perplexity"][key] = result["perplexity"][key]
    result["settings"] = resolved
    result["environment"] = describe_run(model)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def resolve_settings(settings: dict | None) -> dict:
    """The defaults overlaid with ``settings``; unknown names are an error that lists the known ones."""
    settings = settings or {}
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown measurement(s) {unknown}; known: {sorted(DEFAULTS)}.")
    resolved = {}
    for name, defaults in DEFAULTS.items():
        given = settings.get(name) or {}
        bad = sorted(set(given) - set(defaults))
        if bad:
            raise ValueError(f"Unknown {name} setting(s) {bad}; known: {sorted(defaults)}.")
        resolved[name] = {key: list(value) if isinstance(value, tuple) else value
                          for key, value in {**defaults, **given}.items()}
    return resolved


def describe_run(model) -> dict:
    import torch

    parameter = next(model.parameters(), None)
    return {"torch": torch.__version__, "device": str(_device(model)), "torch_threads": torch.get_num_threads(),
            "dtype": str(parameter.dtype).removeprefix("torch.") if parameter is not None else None}


def prompt_inputs(model, tokenizer, length: int, batch_size: int) -> dict:
    """The first ``length`` tokens of the bundled text (repeated if it is shorter), as a batch of
    identical rows: every row has the same length, so no padding is involved."""
    import torch

    ids = tokenizer(bundled.TEXT, add_special_tokens=False).input_ids
    ids = (ids * (length // len(ids) + 1))[:length]
    input_ids = torch.tensor([ids] * batch_size, device=_device(model))
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def context_length(model) -> int | None:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    kinds = tuple(k for k in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if k)
    return isinstance(error, kinds) or (isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def _timed_generate(model, tokenizer, inputs, new_tokens) -> tuple[float, int]:
    """Seconds for one greedy ``generate`` of exactly ``new_tokens`` tokens, and how many it made."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    _synchronize(model)
    started = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                do_sample=False, pad_token_id=pad)
    _synchronize(model)
    return time.perf_counter() - started, int(output.shape[1] - inputs["input_ids"].shape[1])


def _device(model):
    import torch

    # An offloaded model reports "meta"; accelerate's hooks move CPU inputs for it (as in the worker).
    return model.device if model.device.type != "meta" else torch.device("cpu")


def _synchronize(model) -> None:
    import torch

    if _device(model).type == "cuda":
        torch.cuda.synchronize()


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
