"""GGUF header benchmark: modelhub's own header reader (``modelhub.discovery.gguf_header.read_facts``) against
the gguf package's ``GGUFReader`` and transformers' own header reader (``read_gguf_metadata``), per file.

Two kinds of files, real GGUF headers written by the gguf package (tests/gguf_files.py), tensor data a hole:

- ``--small`` files (default 200) of a tiny Llama with a 32-token vocabulary: what the header costs when the
  tensor table is most of it;
- ``--realistic`` files (default 5) with Llama 3's vocabulary size in the metadata (128,000 tokens and 280,000
  merges, ~8 MB of strings: what real GGUF files carry) and tiny tensors.

Each reader gets the facts discovery needs (architecture, file type, every tensor's name, shape and type), so
the gguf package and transformers read the whole header as modelhub does. Times per file: cold-ish (each
file's pages dropped from the page cache first with posix_fadvise DONTNEED: no root needed; the next read
goes to the disk or whatever cache the device has) and warm (median of ``--repeat`` rounds). The floor,
measured in the same run: opening each file and reading its header's bytes (what any reader pays). Also
"modelhub, walking": the same reader made to walk every vocabulary string instead of guessing where the
vocabulary ends (see the module's docstring), to show what the guess saves. GGUFReader takes seconds on a
realistic file, so it reads ``--slow-files`` of them (default 1), once.

Targets: modelhub under 2 ms a small file warm (the scan bench's per-file target), under 10 ms a realistic
one, and faster than GGUFReader on both. From the repo root:

    .venv/bin/python bench/gguf_header.py

Prints markdown tables and PASS/FAIL (exit status 0/1). Not a test.
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.gguf_files

from common import print_verdicts  # noqa: E402  bench/common.py
from modelhub.discovery import gguf_header  # noqa: E402
from tests.gguf_files import llama_tensors, vocabulary, write_header_only  # noqa: E402

SMALL_TARGET_MS = 2.0
REALISTIC_TARGET_MS = 10.0


def generate(base: Path, small: int, realistic: int) -> dict[str, list[Path]]:
    """The two sets of files; each small file of a different size, as real ones are."""
    base.mkdir(parents=True, exist_ok=True)
    small_files = [write_header_only(base / f"small-{i:04d}.gguf", name=f"Tiny Llama {i}",
                                     tensors=llama_tensors({"hidden": 64, "intermediate": 128 + 32 * (i % 7),
                                                            "layers": 2 + i % 3, "heads": 4, "kv_heads": 4,
                                                            "vocab": 1000}, "Q8_0"))
                   for i in range(small)]
    tokens, merges = vocabulary()
    first = write_header_only(base / "realistic-0000.gguf", name="Llama 3 8B Instruct", tokens=tokens, merges=merges)
    realistic_files = [first]
    for i in range(1, realistic):
        realistic_files.append(Path(shutil.copyfile(first, base / f"realistic-{i:04d}.gguf")))
    return {"small": small_files, "realistic": realistic_files}


def own(path: Path):
    facts = gguf_header.read_facts(path)
    return facts.architecture, facts.file_type, facts.tensors


def own_walking(path: Path):
    saved, gguf_header._BIG_ARRAY = gguf_header._BIG_ARRAY, float("inf")
    try:
        return own(path)
    finally:
        gguf_header._BIG_ARRAY = saved


def gguf_reader(path: Path):
    import gguf

    reader = gguf.GGUFReader(path)
    architecture = reader.get_field("general.architecture").contents()
    file_type = reader.get_field("general.file_type").contents()
    return architecture, file_type, [(t.name, tuple(int(d) for d in t.shape), t.tensor_type.name) for t in reader.tensors]


def transformers_reader(path: Path):
    from transformers.integrations.gguf.reader import read_gguf_metadata

    metadata, names = read_gguf_metadata(str(path))
    return metadata["general.architecture"], metadata.get("general.file_type"), names


def floor(path: Path, header_bytes: dict):
    with open(path, "rb") as handle:
        return handle.read(header_bytes[path])


def header_size(path: Path) -> int:
    """Bytes up to the end of the tensor table: the data section starts at the next alignment after it."""
    with open(path, "rb") as handle:
        return len(handle.read(16 << 20).rstrip(b"\0"))


def drop(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def per_file_ms(read, paths: list[Path]) -> float:
    began = time.perf_counter()
    for path in paths:
        read(path)
    return (time.perf_counter() - began) * 1000 / len(paths)


def measure(files: dict[str, list[Path]], args) -> dict:
    """{(kind, reader): (files read, cold ms a file, warm ms a file)}."""
    header_bytes = {path: header_size(path) for paths in files.values() for path in paths}
    readers = {"floor: open + read the header's bytes": lambda path: floor(path, header_bytes),
               "modelhub (gguf_header)": own, "modelhub, walking every string": own_walking,
               "transformers read_gguf_metadata": transformers_reader, "gguf GGUFReader": gguf_reader}
    for read in readers.values():  # imports and first-call costs out of the timings
        read(files["small"][0])
    results = {}
    for kind, paths in files.items():
        for label, read in readers.items():
            slow = label.startswith("gguf") and kind == "realistic"
            chosen = paths[:args.slow_files] if slow else paths
            drop(chosen)
            cold = per_file_ms(read, chosen)
            rounds = 1 if slow else args.repeat
            warm = statistics.median(per_file_ms(read, chosen) for _ in range(rounds))
            results[kind, label] = (len(chosen), cold, warm)
    return results


def agrees(files: dict[str, list[Path]]) -> bool:
    """modelhub reads what the gguf package reads: same architecture, file type and tensors."""
    return all(own(paths[0]) == own_walking(paths[0]) == gguf_reader(paths[0]) for paths in files.values())


def report(results: dict, same: bool, args) -> bool:
    print(f"## GGUF header reading, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; {args.small} small files (tiny Llama, "
          f"32-token vocabulary), {args.realistic} realistic (128,000 tokens + 280,000 merges, tiny tensors). "
          f"Cold-ish: the file's pages dropped with posix_fadvise first. Warm: median of {args.repeat} rounds.\n")
    print("| files | reader | files read | cold-ish ms/file | warm ms/file | warm / floor |")
    print("|---|---|---:|---:|---:|---:|")
    for (kind, label), (count, cold, warm) in results.items():
        floor_ms = results[kind, "floor: open + read the header's bytes"][2]
        print(f"| {kind} | {label} | {count:,} | {cold:.3f} | {warm:.3f} | {warm / floor_ms:.1f} |")
    print()
    small, realistic = results["small", "modelhub (gguf_header)"][2], results["realistic", "modelhub (gguf_header)"][2]
    return print_verdicts([
        ("modelhub reads the same architecture, file type and tensors as the gguf package", same),
        (f"modelhub, small file warm: {small:.3f} ms (target < {SMALL_TARGET_MS} ms)", small < SMALL_TARGET_MS),
        (f"modelhub, realistic file warm: {realistic:.3f} ms (target < {REALISTIC_TARGET_MS} ms)",
         realistic < REALISTIC_TARGET_MS),
        ("modelhub faster than GGUFReader on both", all(
            results[kind, "modelhub (gguf_header)"][2] < results[kind, "gguf GGUFReader"][2] for kind in ("small", "realistic"))),
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=200, help="small-vocabulary files")
    parser.add_argument("--realistic", type=int, default=5, help="files with a realistic vocabulary")
    parser.add_argument("--slow-files", type=int, default=1, help="realistic files GGUFReader reads (seconds each)")
    parser.add_argument("--repeat", type=int, default=5, help="warm rounds (the median is reported)")
    parser.add_argument("--workdir", help="where to write the files (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelhub-bench-gguf-") as workdir:
        files = generate(Path(args.workdir or workdir), args.small, args.realistic)
        passed = report(measure(files, args), agrees(files), args)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
