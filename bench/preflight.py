"""Preflight benchmark: predicted against measured peak memory of real loads, and the speed of the cards' marks.

Builds once (cached in ``--model-dir``) Llama models of three sizes (26.7M, 59.5M and 120M parameters,
random weights, the 1000-token BPE tokenizer of ``tests/tiny_models.py``), each saved in float32 and in
bfloat16, in a child process: a process that imported torch and built a model would hand its RSS to
every worker it starts (Linux keeps ``ru_maxrss`` across fork and exec), so this one never imports torch.

- Accuracy: each model and config (the checkpoint's dtype, float32, bfloat16, 8-bit and 4-bit
  bitsandbytes) is loaded by the real worker (``python -P -m modelhub.loading.worker``, the supervisor's
  request on stdin, one CPU thread), whose ``loaded`` event carries ``measured_peak`` (host RSS peak of
  the load and the smoke test). Preflight predicts the same load from metadata only, with the worker
  baseline of the warm-up load before (as a server uses its newest load's). Printed per load: the raw
  error, and the calibrated one, leave-one-out: corrected by the median measured/predicted ratio of the
  *other* loads (of the same kind when 3 ran, else of any kind), as preflight does with a host's history.
  The 26.7M and 120M models are the ones the load model's constants were measured on; 59.5M is not.
- Speed: 1,000 registered models (SQLite), ``preflight.marks`` cold (headers parsed) and warm, and
  ``preflight.check`` per model; against a floor measured in the same run: the stat of every weight file
  and config of each model (what noticing a changed file costs anyway).

From the repo root:

    HF_HUB_OFFLINE=1 .venv/bin/python bench/preflight.py
    HF_HUB_OFFLINE=1 .venv/bin/python bench/preflight.py --model-dir /tmp/preflight-models --sizes 30m,120m

Prints markdown tables and PASS/FAIL (exit status 0/1). Not a test.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {  # name -> LlamaConfig arguments (vocabulary 1000)
    "30m": {"hidden_size": 512, "intermediate_size": 1408, "num_hidden_layers": 8, "num_attention_heads": 8,
            "num_key_value_heads": 8},
    "60m": {"hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 8, "num_attention_heads": 12,
            "num_key_value_heads": 4},
    "120m": {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 10, "num_attention_heads": 16,
             "num_key_value_heads": 8},
}
CONFIGS = [("as stored", {}), ("float32", {"dtype": "float32"}), ("bfloat16", {"dtype": "bfloat16"}),
           ("8-bit", {"quantization_config": {"load_in_8bit": True}}),
           ("4-bit", {"quantization_config": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}})]
TARGET = 0.10  # +-10%
MARKS_TARGET = 0.005  # seconds per model
BUILD = """
import sys, json, torch
from pathlib import Path
from transformers import AutoModelForCausalLM, LlamaConfig
from tests.tiny_models import VOCAB_SIZE, build_tokenizer
directory, dtype, shape = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
torch.manual_seed(0)
config = LlamaConfig(vocab_size=VOCAB_SIZE, bos_token_id=1, eos_token_id=2, pad_token_id=3,
                     max_position_embeddings=2048, **shape)
AutoModelForCausalLM.from_config(config).to(getattr(torch, dtype)).save_pretrained(directory)
build_tokenizer(directory)
"""


def build(root: Path, size: str, dtype: str) -> Path:
    directory = root / f"llama-{size}-{dtype}"
    if not (directory / "config.json").exists():
        subprocess.run([sys.executable, "-c", BUILD, str(directory), dtype, json.dumps(SIZES[size])],
                       cwd=ROOT, check=True, capture_output=True, timeout=900)
    return directory


def worker_load(directory: Path, load_config: dict, timeout: float) -> dict:
    """One real worker load, as the supervisor asks for it; returns its ``loaded`` (or ``failed``) event."""
    request = {"model_name": directory.name, "hf_path": directory.name, "cache_path": str(directory),
               "load_config": load_config, "settings": {"cpu_threads": 1}}
    with tempfile.TemporaryDirectory() as workdir:
        worker = subprocess.Popen([sys.executable, "-P", "-m", "modelhub.loading.worker"], cwd=workdir, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            worker.stdin.write(json.dumps(request) + "\n")
            worker.stdin.flush()
            deadline = time.monotonic() + timeout
            for line in worker.stdout:
                event = json.loads(line)
                if event["event"] in ("loaded", "failed") or time.monotonic() > deadline:
                    return event
            return {"event": "failed", "error_message": "the worker ended without a report"}
        finally:
            worker.stdin.close()
            worker.wait(timeout=60)


def predict(app, directory: Path, load_config: dict, baseline: int) -> dict:
    """Preflight's raw prediction for the smoke test's load, on this host with ``baseline`` measured."""
    from modelhub.models import ModelRegistry
    from modelhub.preflight import checkpoint, estimate, host
    from modelhub.preflight.service import _Evaluation

    facts = {**host.facts(app), "baseline_rss_bytes": baseline, "recent_attempts": []}
    row = ModelRegistry(id=0, model_name=directory.name, hf_path=directory.name, cache_path=str(directory))
    evaluation = _Evaluation(app, row, load_config, estimate.SMOKE_CONTEXT, estimate.SMOKE_PROMPT_TOKENS, facts,
                             checkpoint.read(str(directory), directory.name))
    return {"raw_host_bytes": evaluation.raw_host, "plan": evaluation.plan.as_dict()}


def leave_one_out(rows: list[dict]) -> None:
    """Each row's calibrated error: corrected by what the other loads taught (preflight's own rule)."""
    from modelhub.preflight import calibration

    for index, row in enumerate(rows):
        others = [{"predicted_peak": other["predicted"], "measured_peak": {"host_peak_rss_bytes": other["measured"]}}
                  for position, other in enumerate(rows) if position != index]
        learned = calibration.learn(others, row["predicted"]["plan"]["kind"])
        factor = learned["factor"] if learned else 1.0
        row["calibrated_error"] = row["predicted"]["raw_host_bytes"] * factor / row["measured"] - 1


def accuracy(app, root: Path, sizes: list[str], timeout: float) -> list[dict]:
    rows = []
    warm = worker_load(build(root, sizes[0], "float32"), {}, timeout)  # the "newest load" whose baseline counts
    baseline = warm["measured_peak"]["host_baseline_rss_bytes"]
    for size in sizes:
        for stored in ("float32", "bfloat16"):
            directory = build(root, size, stored)
            for label, load_config in CONFIGS:
                event = worker_load(directory, load_config, timeout)
                if event["event"] != "loaded":
                    print(f"- {size} {stored} {label}: {event['event']}: {event.get('error_message', '')[:200]}")
                    continue
                measured = event["measured_peak"]["host_peak_rss_bytes"]
                predicted = predict(app, directory, load_config, baseline)
                rows.append({"size": size, "stored": stored, "config": label, "measured": measured,
                             "predicted": predicted, "raw_error": predicted["raw_host_bytes"] / measured - 1})
                print(f"  {size} {stored:8} {label:9} measured {measured / 2**20:7.1f} MiB, predicted "
                      f"{predicted['raw_host_bytes'] / 2**20:7.1f} MiB", file=sys.stderr, flush=True)
    leave_one_out(rows)
    return rows


def speed(app, root: Path, sizes: list[str], models: int) -> dict:
    from modelhub import preflight
    from modelhub.extensions import db
    from modelhub.models import ModelRegistry
    from modelhub.preflight import checkpoint, headers

    directories = [build(root, size, stored) for size in sizes for stored in ("float32", "bfloat16")]
    with app.app_context():
        db.session.add_all(ModelRegistry(model_name=f"bench/m{index}", hf_path=f"bench/m{index}", cache_location="custom",
                                         cache_path=str(directories[index % len(directories)])) for index in range(models))
        db.session.commit()
        rows = list(db.session.scalars(db.select(ModelRegistry)))
        headers.clear_cache()
        checkpoint._checkpoints.clear()
        started = time.perf_counter()
        preflight.marks(app, rows)
        cold = (time.perf_counter() - started) / models
        warm = []
        for _ in range(5):
            started = time.perf_counter()
            preflight.marks(app, rows)
            warm.append((time.perf_counter() - started) / models)
        started = time.perf_counter()
        for row in rows[:100]:
            preflight.check(app, row)
        check_each = (time.perf_counter() - started) / 100
    floor = []
    for _ in range(5):
        started = time.perf_counter()
        for row in rows:
            names = os.listdir(row.cache_path)
            for name in names:
                if name.endswith((".safetensors", ".json")):
                    os.stat(os.path.join(row.cache_path, name))
        floor.append((time.perf_counter() - started) / models)
    return {"cold": cold, "warm": statistics.median(warm), "check": check_each, "floor": statistics.median(floor)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "modelhub-bench-preflight")
    parser.add_argument("--sizes", default="30m,60m,120m", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--models", type=int, default=1000, help="registered models for the speed part")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per load")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from modelhub.app import create_app

    sizes = args.sizes.split(",")
    args.model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{home}/models.db",
                          "MODELHUB_HOME": home}, web=False)
        with app.app_context():
            rows = accuracy(app, args.model_dir, sizes, args.timeout)
        timing = speed(app, args.model_dir, sizes, args.models)
    print("| model | stored | config | measured peak | predicted (raw) | raw error | calibrated error (leave-one-out) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| llama-{row['size']} | {row['stored']} | {row['config']} | {row['measured'] / 2**20:.1f} MiB | "
              f"{row['predicted']['raw_host_bytes'] / 2**20:.1f} MiB | {row['raw_error'] * 100:+.1f}% | "
              f"{row['calibrated_error'] * 100:+.1f}% |")
    raw = [abs(row["raw_error"]) for row in rows]
    calibrated = [abs(row["calibrated_error"]) for row in rows]
    print(f"\n{len(rows)} loads: raw error max {max(raw) * 100:.1f}%, median {statistics.median(raw) * 100:.1f}%; "
          f"calibrated max {max(calibrated) * 100:.1f}%, median {statistics.median(calibrated) * 100:.1f}%")
    print(f"\n| {args.models} models | per model | against the floor |\n|---|---|---|")
    print(f"| floor: stat of each model's files | {timing['floor'] * 1000:.3f} ms | 1.0x |")
    for name, key in (("marks, cold (headers parsed)", "cold"), ("marks, warm", "warm"), ("check (first 100)", "check")):
        print(f"| {name} | {timing[key] * 1000:.3f} ms | {timing[key] / timing['floor']:.1f}x |")
    sizes_in_target = {row["size"] for row in rows if all(abs(other["raw_error"]) <= TARGET for other in rows
                                                          if other["size"] == row["size"])}
    configs = {row["config"] for row in rows}
    from bench.common import print_verdicts

    passed = print_verdicts([
        (f"raw prediction within +-10% for every config ({', '.join(sorted(configs))}) on at least two sizes "
         f"({', '.join(sorted(sizes_in_target)) or 'none'})", len(sizes_in_target) >= 2 and len(configs) == len(CONFIGS)),
        (f"calibrated (leave-one-out) within +-10% on every load (max {max(calibrated) * 100:.1f}%)", max(calibrated) <= TARGET),
        (f"marks under 5 ms per model, cold ({timing['cold'] * 1000:.3f} ms) and warm ({timing['warm'] * 1000:.3f} ms)",
         max(timing["cold"], timing["warm"]) < MARKS_TARGET),
    ])
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
