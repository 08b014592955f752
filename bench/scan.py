"""Discovery scan benchmark: modelhub's scanner against huggingface_hub's own ``scan_cache_dir``.

It generates a tree of ``--models`` models (default 1,000): 60% hub-cache repos in a fake hub cache
(the primary location, laid out as huggingface_hub downloads leave it: blobs, relative symlinks in
``snapshots/<revision>/``, ``refs/main``; built with ``tests/discovery/trees.py``) and 40% plain folders in
a secondary root (half ``org/name``, half ``name``). Each model has a config.json, a small fake
model.safetensors (the scanner never reads weights) and a tokenizer.json. Then it times:

- the scanner on the hub part alone (``scan([primary])``),
- ``scan_cache_dir`` on the same hub part (the floor: the scanner calls it, then reads each config.json),
- the scanner on all the models (``scan([primary, secondary])``),

cold (page cache dropped before each scan: ``sync; echo 3 > /proc/sys/vm/drop_caches``, which needs root;
median of ``--cold-repeat`` rounds; where that fails, "cold" is the first scan of a freshly generated tree,
and the table says so) and warm (median of ``--repeat`` rounds), the order rotating each round. Targets,
cold and warm: scanner / scan_cache_dir on the hub part <= 1.5, all the models in under 2 s. huggingface_hub
is imported before any timing (the web process imports it once). From the repo root:

    HF_HUB_OFFLINE=1 .venv/bin/python bench/scan.py

Prints a markdown table and PASS/FAIL (exit status 0/1). Not a test; ``--help`` lists the knobs.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.discovery.trees

import huggingface_hub  # noqa: E402
from huggingface_hub import scan_cache_dir  # noqa: E402

from common import print_verdicts  # noqa: E402  bench/common.py (this script's directory is on sys.path)
from modelhub.discovery.scanner import scan  # noqa: E402
from modelhub.discovery.types import Location  # noqa: E402
from tests.discovery.trees import add_hub_repo, add_plain  # noqa: E402

RATIO_TARGET = 1.5
TOTAL_TARGET_S = 2.0
ARCHITECTURES = [("LlamaForCausalLM", "llama"), ("PhiForCausalLM", "phi"), ("GPT2LMHeadModel", "gpt2"),
                 ("MistralForCausalLM", "mistral"), ("Qwen2ForCausalLM", "qwen2")]
TOKENIZER = json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {f"t{i}": i for i in range(200)}}}).encode()


def model_files(i: int) -> dict[str, bytes]:
    architecture, model_type = ARCHITECTURES[i % len(ARCHITECTURES)]
    config = {"architectures": [architecture], "model_type": model_type, "hidden_size": 64, "num_hidden_layers": 2,
              "vocab_size": 200, "torch_dtype": "float32"}
    if i % 10 == 0:
        config["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    return {
        "config.json": json.dumps(config, indent=2).encode(),
        "model.safetensors": b"fake weights %d" % i,  # unique, so each repo gets its own blob hash
        "tokenizer.json": TOKENIZER,
    }


def generate(base: Path, models: int, hub_share: float) -> tuple[Path, Path, int]:
    """The hub cache and the secondary root under ``base``; returns (hub, plain, hub model count)."""
    hub, plain = base / "hub", base / "disk2"
    hub_models = round(models * hub_share)
    for i in range(hub_models):
        add_hub_repo(hub, f"org-{i % 37}/model-{i:04d}", model_files(i))
    for i in range(hub_models, models):
        add_plain(plain, f"org-{i % 23}/plain-{i:04d}" if i % 2 else f"plain-{i:04d}", model_files(i))
    return hub, plain, hub_models


def drop_caches() -> bool:
    """Drop the page, dentry and inode caches; False where this process may not."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as file:
            file.write("3\n")
    except OSError:
        return False
    return True


def cases(hub: Path, plain: Path) -> dict:
    primary, secondary = Location("primary", hub), Location("secondary", plain)
    return {
        "scanner, hub part": lambda: len(scan([primary]).found),
        "scan_cache_dir, hub part": lambda: len(scan_cache_dir(hub).repos),
        "scanner, all models": lambda: len(scan([primary, secondary]).found),
    }


def timed(run) -> tuple[float, int]:
    began = time.perf_counter()
    count = run()
    return time.perf_counter() - began, count


def measure(base: Path, args) -> tuple[dict, dict, str, dict]:
    """(cold seconds, warm median seconds, how "cold" was obtained, models found per case)."""
    hub, plain, _ = generate(base / "tree", args.models, args.hub_share)
    labels, found = list(cases(hub, plain)), {}
    cold, warm = {label: [] for label in labels}, {label: [] for label in labels}
    can_drop = drop_caches()
    for r in range(args.cold_repeat if can_drop else 1):
        for label in rotated(labels, r):
            if can_drop:
                drop_caches()
                run = cases(hub, plain)[label]
            else:  # the first scan of a tree of its own, generated just before
                run = cases(*generate(base / f"cold-{label}", args.models, args.hub_share)[:2])[label]
            seconds, found[label] = timed(run)
            cold[label].append(seconds)
    for r in range(args.repeat):
        for label in rotated(labels, r):
            seconds, found[label] = timed(cases(hub, plain)[label])
            warm[label].append(seconds)
    how = (f"page cache dropped before each scan, median of {args.cold_repeat}" if can_drop
           else "a single first scan of a freshly generated tree (caches could not be dropped)")
    return median(cold), median(warm), how, found


def rotated(labels: list[str], r: int) -> list[str]:
    return labels[r % len(labels):] + labels[:r % len(labels)]


def median(samples: dict) -> dict:
    return {label: statistics.median(seconds) for label, seconds in samples.items()}


def report(cold: dict, warm: dict, how: str, found: dict, args) -> bool:
    hub_models = round(args.models * args.hub_share)
    print(f"## Discovery scan, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"Python {platform.python_version()}, huggingface_hub {huggingface_hub.__version__}, {os.cpu_count()} CPUs; "
          f"{args.models:,} models: {hub_models:,} hub-cache repos, {args.models - hub_models:,} plain folders. "
          f"Cold: {how}. Warm: median of {args.repeat}.\n")
    print("| measurement | models found | cold s | warm s |")
    print("|---|---:|---:|---:|")
    for label in cold:
        print(f"| {label} | {found[label]:,} | {cold[label]:.3f} | {warm[label]:.3f} |")
    runs = {"cold": cold, "warm": warm}
    ratios = {kind: times["scanner, hub part"] / times["scan_cache_dir, hub part"] for kind, times in runs.items()}
    print(f"| ratio scanner / scan_cache_dir, hub part | | {ratios['cold']:.2f} | {ratios['warm']:.2f} |\n")
    everything = found["scanner, all models"]
    checks = [(f"models found: {everything:,} of {args.models:,}", everything == args.models)]
    for kind, times in runs.items():
        ratio, total = ratios[kind], times["scanner, all models"]
        checks.append((f"{kind}: hub part {ratio:.2f}x scan_cache_dir (<= {RATIO_TARGET})", ratio <= RATIO_TARGET))
        checks.append((f"{kind}: {args.models:,} models in {total:.2f} s (< {TOTAL_TARGET_S} s)",
                       total < TOTAL_TARGET_S))
    return print_verdicts(checks)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000, help="models in the generated tree")
    parser.add_argument("--hub-share", type=float, default=0.6, help="the share of them in the hub cache")
    parser.add_argument("--repeat", type=int, default=5, help="warm rounds (the median is reported)")
    parser.add_argument("--cold-repeat", type=int, default=3, help="cold rounds, where caches can be dropped")
    parser.add_argument("--workdir", help="where to generate the trees (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    if args.workdir:
        cold, warm, how, found = measure(Path(args.workdir), args)
    else:
        with tempfile.TemporaryDirectory(prefix="modelhub-bench-scan-") as workdir:
            cold, warm, how, found = measure(Path(workdir), args)
    return 0 if report(cold, warm, how, found, args) else 1


if __name__ == "__main__":
    sys.exit(main())
