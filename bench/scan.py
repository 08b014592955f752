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

Then the tools' libraries: ``--gguf-files`` GGUF files (default 1,000; real headers written by the gguf
package, tensor data a hole) across LM Studio (40%: <publisher>/<repo>/, four quantizations a repo),
Ollama (30%: manifests and blobs; a few byte-identical to an LM Studio file, a few hard links to one) and
text-generation-webui (30%: loose files, three quantizations a model). Each file's size differs (real
GGUF files rarely share one), so only the identical ones are hashed. Times, per file: the first scan
(every header read, digests where sizes collide), a scan of the same tree reading every header again
(page cache warm), a rescan with the registry's facts (no header opened: what a rescan does), and
``scan_and_record`` rescanning through a SQLite registry; the same at a tenth of the files, to show the
cost per file stays flat. The floor, in the same run: walking the same trees, stat-ing every file and reading
its first 8 bytes (what telling a GGUF file by its magic costs at least); each case is printed as a ratio to it. Targets: under 2 ms a file warm, and the per-file cost at 1,000 files within
1.5x of that at 100.

Prints markdown tables and PASS/FAIL (exit status 0/1). Not a test; ``--help`` lists the knobs.
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
from modelhub.discovery.identity import KnownFile, KnownFiles  # noqa: E402
from modelhub.discovery.libraries import SECONDARY_ENV  # noqa: E402
from modelhub.discovery.scanner import scan  # noqa: E402
from modelhub.discovery.types import Location  # noqa: E402
from tests.discovery.trees import (add_hub_repo, add_lmstudio, add_ollama, add_plain, textgen_install,  # noqa: E402
                                   write_gguf)

RATIO_TARGET = 1.5
TOTAL_TARGET_S = 2.0
PER_FILE_TARGET_MS = 2.0
FLAT_TARGET = 1.5  # per-file cost at --gguf-files over that at a tenth of them
QUANTS = ("Q4_K_M", "Q5_K_M", "Q8_0", "F16")
TWINS = 0.02  # of the files: Ollama blobs byte-identical to an LM Studio file (pulled separately), and as many hard links
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


# The tools' libraries


def generate_libraries(base: Path, files: int) -> tuple[list[Location], int]:
    """LM Studio, Ollama and text-generation-webui roots under ``base`` holding ``files`` GGUF files;
    returns the locations and the copies a scan should report (hard-linked files are one copy)."""
    lmstudio, ollama = base / "lmstudio", base / "ollama"
    textgen = textgen_install(base / "text-generation-webui")
    n_lms, n_ollama = int(files * 0.4), int(files * 0.3)
    twins = max(1, int(files * TWINS))
    padding = iter(range(files))  # a metadata string of a different length in each file: each its own size

    def gguf(path: Path, quant: str, name: str) -> Path:
        return write_gguf(path, quant, name=name, metadata={"general.description": "x" * (32 * next(padding))})

    lms_files = []
    for i in range(n_lms):
        repo, quant = f"pub-{i // 4 % 20}/model-{i // 4:04d}-GGUF", QUANTS[i % 4]
        source = gguf(base / "src" / f"lms-{i}.gguf", quant, f"model {i // 4}")
        lms_files.append(add_lmstudio(lmstudio, repo, f"model-{i // 4:04d}-{quant}.gguf", source, "hardlink"))
    for j in range(n_ollama):
        if j < 2 * twins:  # the same bytes as an LM Studio file: an independent copy, then hard links
            add_ollama(ollama, f"twin-{j}:latest", lms_files[j], "copy" if j < twins else "hardlink")
        else:
            add_ollama(ollama, f"ollama-{j}:{QUANTS[j % 4].lower()}",
                       gguf(base / "src" / f"ollama-{j}.gguf", QUANTS[j % 4], f"ollama {j}"), "hardlink")
    for k in range(files - n_lms - n_ollama):
        gguf(textgen / f"tg-model-{k // 3:04d}.{QUANTS[k % 3]}.gguf", QUANTS[k % 3], f"tg {k // 3}")
    locations = [Location("secondary", lmstudio, "lmstudio"), Location("secondary", ollama, "ollama"),
                 Location("secondary", textgen, "text-generation-webui")]
    return locations, files - twins


def known_from(found) -> KnownFiles:
    """What the registry would hand the next scan (modelhub.discovery.sync.known_files)."""
    known = KnownFiles()
    for copy in found:
        known.add(copy.file_key, copy.size_bytes, KnownFile(copy.architecture, copy.model_type, copy.quantization,
                                                            copy.parameter_count, copy.context_length, copy.digest))
    return known


def measure_libraries(base: Path, files: int, repeat: int) -> dict:
    """Seconds of each case (first scan once, the others their median), and copies found."""
    locations, expected = generate_libraries(base, files)
    first, found = timed_found(lambda: scan(locations))
    known = known_from(found)
    headers = statistics.median(timed_found(lambda: scan(locations))[0] for _ in range(repeat))
    rescan = statistics.median(timed_found(lambda: scan(locations, known=known))[0] for _ in range(repeat))
    floor = statistics.median(list_and_peek(locations) for _ in range(repeat))
    return {"files": files, "expected": expected, "found": len(found), "first": first, "headers": headers,
            "rescan": rescan, "registry": rescan_through_registry(base, locations, repeat), "floor": floor}


def list_and_peek(locations: list[Location]) -> float:
    """The floor, in the same run: walk the same trees, stat every file and read its first 8 bytes (what any
    program that tells a GGUF file by its magic pays, before reading a header or a manifest)."""
    began = time.perf_counter()
    for location in locations:
        for folder, _, names in os.walk(location.root):
            for name in names:
                path = os.path.join(folder, name)
                os.stat(path)
                with open(path, "rb") as file:
                    file.read(8)
    return time.perf_counter() - began


def timed_found(run) -> tuple[float, list]:
    began = time.perf_counter()
    report = run()
    return time.perf_counter() - began, report.found


def rescan_through_registry(base: Path, locations: list[Location], repeat: int) -> float:
    """Median seconds of ``scan_and_record`` once the registry holds every copy (SQLite)."""
    from modelhub.app import create_app
    from modelhub.discovery.service import scan_and_record

    os.environ.update({"HF_HUB_CACHE": str(base / "no-hub"), "MODELHUB_LIBRARIES": "lmstudio,ollama,text-generation-webui",
                       "MODELHUB_LMSTUDIO_MODELS": str(locations[0].root), "MODELHUB_OLLAMA_MODELS": str(locations[1].root),
                       "MODELHUB_TEXTGEN_WEBUI": str(locations[2].root.parent.parent)})
    os.environ.pop(SECONDARY_ENV, None)
    (base / "no-hub").mkdir(exist_ok=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{base / 'registry.db'}", "MODELHUB_HOME": str(base / "home")})
    with app.app_context():
        scan_and_record()
        samples = []
        for _ in range(repeat):
            began = time.perf_counter()
            summary = scan_and_record()
            samples.append(time.perf_counter() - began)
            assert summary.added == [] and summary.copies_added == 0, "a rescan changed the registry"
    return statistics.median(samples)


def report_libraries(small: dict, large: dict) -> bool:
    print(f"## GGUF libraries: {large['files']:,} files (LM Studio, Ollama, text-generation-webui)\n")
    print("| measurement | files | copies found | s | ms per file |")
    print("|---|---:|---:|---:|---:|")
    labels = {"first": "first scan (headers read, twins hashed)", "headers": "scan reading every header, warm",
              "rescan": "rescan with the registry's facts (scanner)", "registry": "rescan: scan_and_record, SQLite"}
    for run in (small, large):
        for key, label in labels.items():
            print(f"| {label} | {run['files']:,} | {run['found']:,} | {run[key]:.3f} | {per_file(run, key):.3f} |")
    flat = {key: per_file(large, key) / per_file(small, key) for key in labels}
    print(f"| ratio ms per file, {large['files']:,} / {small['files']:,} files | | | | "
          f"{', '.join(f'{key} {ratio:.2f}' for key, ratio in flat.items())} |")
    print(f"| floor: list every file, stat it, read 8 bytes | {large['files']:,} | | {large['floor']:.3f} | "
          f"{per_file(large, 'floor'):.3f} |")
    to_floor = ", ".join(f"{key} {large[key] / large['floor']:.1f}x" for key in labels)
    print(f"| ratio to the floor, {large['files']:,} files | | | | {to_floor} |\n")
    checks = [(f"copies found: {run['found']:,} of {run['expected']:,}", run["found"] == run["expected"]) for run in (small, large)]
    for key in ("headers", "rescan", "registry"):
        checks.append((f"{labels[key]}: {per_file(large, key):.3f} ms per file (< {PER_FILE_TARGET_MS})",
                       per_file(large, key) < PER_FILE_TARGET_MS))
    for key in ("headers", "rescan"):  # the registry's rescan at 100 files is mostly its fixed cost: not a ratio to judge
        checks.append((f"{labels[key]}: flat, {flat[key]:.2f}x per file at {large['files']:,} vs {small['files']:,} "
                       f"(<= {FLAT_TARGET})", flat[key] <= FLAT_TARGET))
    return print_verdicts(checks)


def per_file(run: dict, key: str) -> float:
    return run[key] / run["files"] * 1000


def libraries_case(base: Path, args) -> bool:
    small = measure_libraries(base / "gguf-small", max(10, args.gguf_files // 10), args.repeat)
    large = measure_libraries(base / "gguf-large", args.gguf_files, args.repeat)
    return report_libraries(small, large)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000, help="models in the generated tree")
    parser.add_argument("--hub-share", type=float, default=0.6, help="the share of them in the hub cache")
    parser.add_argument("--repeat", type=int, default=5, help="warm rounds (the median is reported)")
    parser.add_argument("--cold-repeat", type=int, default=3, help="cold rounds, where caches can be dropped")
    parser.add_argument("--gguf-files", type=int, default=1000, help="GGUF files in the tools' libraries (0: skip)")
    parser.add_argument("--workdir", help="where to generate the trees (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelhub-bench-scan-") as workdir:
        base = Path(args.workdir or workdir)
        passed = report(*measure(base, args), args) if args.models else True
        if args.gguf_files:
            passed = libraries_case(base, args) and passed
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
