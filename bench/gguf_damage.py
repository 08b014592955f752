"""GGUF header damage run: a real header (tests/gguf_files.py, a 5,000-token vocabulary) damaged ``--cases``
times by 1-3 random overwrites, bit flips, cuts and repeats (the same damage as
tests/discovery/test_gguf_header_fuzz.py, from a seeded random generator), each read with
``modelhub.discovery.gguf_header.read_facts``. Tallies how each ended: read, refused (``GgufError``: said in
words), or any other exception (a bug: a scan would report it as the file's problem, not crash, but it is
still a bug). Also the slowest read. From the repo root:

    .venv/bin/python bench/gguf_damage.py [--cases 5000] [--seed 15]

Exit status 1 when any read ended in another exception. A reliability figure for docs/reliability.md, not
a test.
"""

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelhub.discovery.gguf_header import GgufError, read_facts  # noqa: E402
from tests.discovery.test_gguf_header_fuzz import MERGES, TOKENS, _damaged  # noqa: E402
from tests.gguf_files import write_header_only  # noqa: E402

KINDS = ("overwrite", "flip", "cut", "repeat")


def _damage(rng: random.Random, data: bytes) -> bytes:
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(KINDS)
        arg = {"overwrite": bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))), "flip": rng.randint(0, 7),
               "cut": 0, "repeat": rng.randint(1, 64)}[kind]
        data = _damaged(data, (kind, rng.randrange(2**20), arg))
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="gguf-damage-"))
    original = write_header_only(directory / "original.gguf", tokens=TOKENS, merges=MERGES).read_bytes()
    rng, tally, slowest = random.Random(args.seed), collections.Counter(), 0.0
    path = directory / "damaged.gguf"
    for _ in range(args.cases):
        path.write_bytes(_damage(rng, original))
        started = time.perf_counter()
        try:
            read_facts(path)
            tally["read"] += 1
        except GgufError:
            tally["refused (GgufError)"] += 1
        except Exception as error:  # noqa: BLE001 - what this run counts
            tally[f"other: {type(error).__name__}"] += 1
        slowest = max(slowest, time.perf_counter() - started)
    print(f"{args.cases} damaged headers, seed {args.seed}: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
    print(f"slowest read: {slowest * 1000:.1f} ms")
    return 1 if any(key.startswith("other") for key in tally) else 0


if __name__ == "__main__":
    sys.exit(main())
