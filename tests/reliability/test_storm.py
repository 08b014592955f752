"""A storm of concurrent writers on a real four-process server: no lost update, no 5xx, on SQLite and
PostgreSQL. The threads share nothing but the server, as separate clients would."""

import threading
import time
from collections import Counter

import pytest
import requests

pytestmark = pytest.mark.slow

THREADS = 8
INCREMENTS = 250  # successful increments per thread
GUARDED_FIELD = "avg_latency_ms"
# One field per thread for the unguarded storm: each thread's last write must be what is stored.
UNGUARDED_FIELDS = ("mmlu_score", "gpqa_score", "hellaswag_score", "humaneval_score", "mbpp_score",
                    "math_score", "truthfulqa_score", "perplexity")


def run_threads(target) -> float:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads), "a storm thread hung"
    return time.monotonic() - started


def create(server, name, **fields):
    response = requests.post(f"{server.url}/api/models", json={"model_name": name, **fields}, timeout=30)
    assert response.status_code == 201, response.text
    return f"{server.url}/api/models/{name}"


def test_if_match_increments_lose_no_update(multi_worker_server, record_figures):
    url = create(multi_worker_server, "storm/guarded", **{GUARDED_FIELD: 0})
    statuses, lock = Counter(), threading.Lock()

    def increment(_index):
        seen = Counter()
        with requests.Session() as session:
            while seen[200] < INCREMENTS:
                read = session.get(url, timeout=30)
                seen[f"GET {read.status_code}"] += 1
                if read.status_code != 200:
                    continue
                value = read.json()[GUARDED_FIELD]
                write = session.patch(f"{url}/metadata", json={GUARDED_FIELD: value + 1},
                                      headers={"If-Match": read.headers["ETag"]}, timeout=30)
                seen[write.status_code] += 1
                if write.status_code not in (200, 412):
                    seen[f"unexpected {write.status_code}: {write.text[:200]}"] += 1
                    break
        with lock:
            statuses.update(seen)

    seconds = run_threads(increment)
    final = requests.get(url, timeout=30).json()[GUARDED_FIELD]

    record_figures(threads=THREADS, increments_per_thread=INCREMENTS, patch_2xx=statuses[200],
                   patch_412=statuses[412], final_value=final, seconds=round(seconds, 1),
                   other=sorted(key for key in statuses if key not in (200, 412, "GET 200")))
    assert not [key for key in statuses if str(key).startswith("unexpected") or str(key).startswith("GET 5")]
    assert statuses[200] == THREADS * INCREMENTS
    assert final == statuses[200]  # every acknowledged increment is in the row: none lost


def test_unguarded_writes_to_different_fields_lose_none(multi_worker_server, record_figures):
    url = create(multi_worker_server, "storm/unguarded")
    statuses, lock = Counter(), threading.Lock()

    def write_own_field(index):
        field, seen = UNGUARDED_FIELDS[index], Counter()
        with requests.Session() as session:
            for step in range(1, INCREMENTS + 1):
                response = session.patch(f"{url}/metadata", json={field: step / 10}, timeout=30)
                seen[response.status_code] += 1
                if response.status_code != 200:
                    seen[f"unexpected {response.status_code}: {response.text[:200]}"] += 1
                    break
        with lock:
            statuses.update(seen)

    seconds = run_threads(write_own_field)
    stored = requests.get(url, timeout=30).json()

    record_figures(threads=THREADS, writes_per_thread=INCREMENTS, patch_2xx=statuses[200],
                   seconds=round(seconds, 1), other=sorted(str(key) for key in statuses if key != 200),
                   stored={field: stored[field] for field in UNGUARDED_FIELDS})
    assert statuses[200] == THREADS * INCREMENTS, statuses
    assert {field: stored[field] for field in UNGUARDED_FIELDS} == dict.fromkeys(UNGUARDED_FIELDS, INCREMENTS / 10)
