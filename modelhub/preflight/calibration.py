"""What preflight learned from the loads it predicted on this host: measured / predicted peak.

Every load attempt stores preflight's prediction at its start (``predicted_peak``) and the worker's
measured peak (``measured_peak``). Loads of the same kind (dtype or quantization, and placement) err by
about the same ratio, so the correction is the median ratio over this host's loads of that kind (of any
kind when fewer than ``MIN_LOADS`` of it ran), and its spread is the error shown: "within +4/-7% over
12 loads here". Measurements are left out: their peak includes the benchmarks' longer sequences.
"""

import statistics

MIN_LOADS = 3


def ratios(recent: list[dict]) -> list[tuple[str, float]]:
    """(kind, measured / raw predicted host peak) of each finished load with both figures."""
    found = []
    for row in recent:
        predicted, measured = row.get("predicted_peak") or {}, row.get("measured_peak") or {}
        raw, peak = predicted.get("raw_host_bytes"), measured.get("host_peak_rss_bytes")
        if isinstance(raw, (int, float)) and raw > 0 and isinstance(peak, (int, float)) and peak > 0:
            found.append(((predicted.get("plan") or {}).get("kind") or "unknown", peak / raw))
    return found


def learn(recent: list[dict], kind: str) -> dict | None:
    """``{"loads", "low", "high", "factor", "text", "kind"}`` for a plan of ``kind``, or None."""
    every = ratios(recent)
    same = [ratio for found_kind, ratio in every if found_kind == kind]
    chosen, scope = (same, "of this kind") if len(same) >= MIN_LOADS else ([r for _, r in every], "of any kind")
    if len(chosen) < MIN_LOADS:
        return None
    factor = statistics.median(chosen)
    errors = [ratio / factor - 1 for ratio in chosen]  # what the corrected prediction missed by, each load
    high, low = max(max(errors), 0.0), max(-min(errors), 0.0)
    return {"loads": len(chosen), "low": round(low, 4), "high": round(high, 4), "factor": round(factor, 4),
            "kind": kind if scope == "of this kind" else None,
            "text": f"within +{high * 100:.0f}/-{low * 100:.0f}% over {len(chosen)} loads {scope} here"}
