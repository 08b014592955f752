"""Measurements on the tiny real models: perplexity against an independent computation, timings
against direct timing loops in the same process, and the stop of batch growth at out-of-memory."""

import json
import math
import statistics
import time

import pytest

from modelhub.measuring import metrics
from modelhub.measuring.text import NAME, TEXT

pytestmark = pytest.mark.slow

SMALL = {
    "time_to_first_token": {"prompt_lengths": [8, 32], "repeats": 3, "warmup": 1},
    "throughput": {"new_tokens": 8, "batch_sizes": [1, 2], "repeats": 2, "warmup": 1},
    "perplexity": {"max_length": 64, "stride": 32},
}


@pytest.fixture(scope="module")
def loaded(tiny_models):
    """``{kind: (model, tokenizer)}`` for the Llama and the GPT-2, loaded once for the module."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return {kind: (AutoModelForCausalLM.from_pretrained(tiny_models[kind]).eval(),
                   AutoTokenizer.from_pretrained(tiny_models[kind]))
            for kind in ("llama", "gpt2")}


def independent_perplexity(model, tokenizer, text, max_length, stride) -> tuple[float, int]:
    """exp(mean NLL) by hand: each token t >= 1 is scored once, by the first window that reaches past
    it, from that window's logits at t - 1 (log_softmax and gather in float64; no labels, no model loss)."""
    import torch

    ids = tokenizer(text, return_tensors="pt").input_ids[0]
    n = len(ids)
    windows = []
    for start in range(0, n, stride):
        windows.append((start, min(start + max_length, n)))
        if start + max_length >= n:
            break
    owner = {t: next(w for w in windows if w[1] > t) for t in range(1, n)}
    total = 0.0
    with torch.no_grad():
        for start, stop in windows:
            log_probs = torch.log_softmax(model(ids[None, start:stop]).logits[0].double(), dim=-1)
            mine = [t for t in range(start + 1, stop) if owner[t] == (start, stop)]
            if mine:
                rows = torch.tensor(mine) - 1 - start
                total -= float(log_probs[rows, ids[mine]].sum())
    return math.exp(total / len(owner)), len(owner)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("max_length, stride", [(64, 24), (None, None)])
def test_perplexity_matches_an_independent_computation(loaded, kind, max_length, stride):
    model, tokenizer = loaded[kind]
    text = TEXT[:4000] if max_length else TEXT  # the defaults (256 / 128 here) on the whole bundled text
    measured = metrics.perplexity(model, tokenizer, text=text if max_length else None,
                                  max_length=max_length, stride=stride)
    expected, tokens = independent_perplexity(model, tokenizer, text, measured["max_length"], measured["stride"])
    assert measured["tokens"] == tokens
    assert abs(measured["perplexity"] - expected) < 1e-4 * expected
    assert abs(math.log(measured["perplexity"]) - math.log(expected)) < 1e-4
    if max_length is None:
        assert (measured["max_length"], measured["stride"]) == (256, 128)  # the tiny models' context
        assert measured["text"] == f"bundled:{NAME}"
    else:
        assert measured["text"] == "custom:4000 chars"


def test_perplexity_is_reproducible(loaded):
    model, tokenizer = loaded["llama"]
    first = metrics.perplexity(model, tokenizer, max_length=128, stride=64)
    assert metrics.perplexity(model, tokenizer, max_length=128, stride=64) == first


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_measure_all_gives_finite_positive_values_and_records_its_settings(loaded, kind):
    model, tokenizer = loaded[kind]
    result = metrics.measure_all(model, tokenizer, SMALL)
    assert json.loads(json.dumps(result)) == result
    values = [result["time_to_first_token"]["avg_latency_ms"], *result["time_to_first_token"]["per_length_ms"].values(),
              result["throughput"]["batch1_tokens_per_sec"], result["throughput"]["best_tokens_per_sec"],
              result["perplexity"]["perplexity"], result["peak_memory"]["host_peak_rss_bytes"]]
    assert all(math.isfinite(v) and v > 0 for v in values), values
    assert set(result["time_to_first_token"]["per_length_ms"]) == {"8", "32"}
    assert set(result["throughput"]["per_batch"]) == {"1", "2"}
    assert result["throughput"]["best_batch_size"] in (1, 2) and result["throughput"]["stopped"] is None
    assert result["settings"] == {
        "time_to_first_token": {"prompt_lengths": [8, 32], "repeats": 3, "warmup": 1},
        "throughput": {"new_tokens": 8, "batch_sizes": [1, 2], "repeats": 2, "warmup": 1},
        "perplexity": {"text": f"bundled:{NAME}", "max_length": 64, "stride": 32},
    }
    assert result["environment"]["device"] == "cpu" and result["environment"]["dtype"] == "float32"


def test_unknown_settings_name_the_known_ones():
    with pytest.raises(ValueError, match=r"known: \['batch_sizes', 'new_tokens'"):
        metrics.resolve_settings({"throughput": {"new_tokenz": 4}})
    with pytest.raises(ValueError, match="Unknown measurement"):
        metrics.resolve_settings({"latency": {}})


def direct_generate_seconds(model, prompt_ids, batch_size, new_tokens) -> float:
    import torch

    input_ids = torch.tensor([prompt_ids] * batch_size)
    started = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                                max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=3)
    seconds = time.perf_counter() - started
    assert output.shape[1] == len(prompt_ids) + new_tokens
    return seconds


@pytest.fixture
def one_thread():
    """Timing on one torch thread: on a small shared machine, two threads for a tiny model spend their
    time waiting for each other and for other processes, and the spread swamps a 10% comparison."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def bundled_prompt(tokenizer, length):
    return tokenizer(TEXT, add_special_tokens=False).input_ids[:length]


def test_time_to_first_token_agrees_with_a_direct_timing_loop(loaded, one_thread):
    model, tokenizer = loaded["llama"]
    lengths, rounds, repeats = (16, 128), 11, 5
    measured, direct = {n: [] for n in lengths}, {n: [] for n in lengths}
    for _ in range(rounds):  # interleaved, so a slow spell of the machine hits both
        result = metrics.time_to_first_token(model, tokenizer, prompt_lengths=lengths, repeats=repeats, warmup=2)
        for n in lengths:
            measured[n].append(result["per_length_ms"][str(n)])
            prompt = bundled_prompt(tokenizer, n)
            for _ in range(2):
                direct_generate_seconds(model, prompt, 1, 1)
            direct[n].append(1000 * statistics.median(
                direct_generate_seconds(model, prompt, 1, 1) for _ in range(repeats)))
    for n in lengths:
        # Each round's two figures were taken side by side: their ratio cancels a slow spell of the machine,
        # which comparing two medians of whole lists does not (1 run in 5 failed that way on 2 idle cores).
        ratio = statistics.median(ours / theirs for ours, theirs in zip(measured[n], direct[n]))
        assert abs(ratio - 1) <= 0.10, (n, ratio, measured[n], direct[n])


def test_batch1_throughput_agrees_with_a_direct_timing_loop(loaded, one_thread):
    model, tokenizer = loaded["llama"]
    new_tokens, rounds, repeats = 24, 9, 3
    prompt = bundled_prompt(tokenizer, metrics.THROUGHPUT_PROMPT_TOKENS)
    measured, direct = [], []
    for _ in range(rounds):
        result = metrics.throughput(model, tokenizer, new_tokens=new_tokens, batch_sizes=(1,), repeats=repeats)
        measured.append(result["batch1_tokens_per_sec"])
        direct_generate_seconds(model, prompt, 1, new_tokens)
        full = statistics.median(direct_generate_seconds(model, prompt, 1, new_tokens) for _ in range(repeats))
        first = statistics.median(direct_generate_seconds(model, prompt, 1, 1) for _ in range(repeats))
        direct.append((new_tokens - 1) / (full - first))
    ratio = statistics.median(ours / theirs for ours, theirs in zip(measured, direct))  # side by side, per round
    assert abs(ratio - 1) <= 0.10, (ratio, measured, direct)


def test_batch_growth_stops_at_out_of_memory(loaded, monkeypatch):
    import torch

    model, tokenizer = loaded["gpt2"]
    real_generate, tried = model.generate, []

    def generate(**kwargs):  # what a small GPU does: batches of 4 and more do not fit
        tried.append(kwargs["input_ids"].shape[0])
        if kwargs["input_ids"].shape[0] >= 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_generate(**kwargs)

    monkeypatch.setattr(model, "generate", generate)
    result = metrics.throughput(model, tokenizer, new_tokens=4, batch_sizes=(1, 2, 4, 8), repeats=1, warmup=0)
    assert result["best_batch_size"] in (1, 2)
    assert set(result["per_batch"]) == {"1", "2"}
    assert result["stopped"]["batch_size"] == 4
    assert result["stopped"]["error"].startswith("OutOfMemoryError: CUDA out of memory")
    assert 8 not in tried
    assert result["best_tokens_per_sec"] == max(row["tokens_per_sec"] for row in result["per_batch"].values())


def test_other_errors_are_not_taken_for_out_of_memory(loaded, monkeypatch):
    model, tokenizer = loaded["gpt2"]

    def generate(**kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(model, "generate", generate)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        metrics.throughput(model, tokenizer, new_tokens=4, batch_sizes=(1, 2), repeats=1, warmup=0)
    assert metrics.is_out_of_memory(RuntimeError("HIP out of memory. Tried to allocate 20.00 MiB"))


def test_a_noisy_one_token_run_does_not_hide_the_decode_rate(monkeypatch):
    """Two repeats on a busy CPU: one slow one-token run puts its median above the full runs' median;
    the fastest runs still tell the rate (before, the rate came out None, failing a measurement)."""
    times = iter([0.010, 0.002, 0.010, 0.030])  # full, first, full, first (the second first run disturbed)
    monkeypatch.setattr(metrics, "prompt_inputs", lambda *args: None)
    monkeypatch.setattr(metrics, "_timed_generate", lambda model, tokenizer, inputs, n: (next(times), n))
    rate = metrics._decode_rate(None, None, batch_size=1, new_tokens=8, repeats=2, warmup=0)
    assert rate["decode_seconds"] == pytest.approx(0.008)
    assert rate["tokens_per_sec"] == pytest.approx(7 / 0.008, rel=1e-3)
