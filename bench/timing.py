"""Percentiles of timed samples, shared by the bench scripts."""

import statistics


def percentiles(ms: list[float], items: int | None = None) -> dict[str, float]:
    """Sample count, p50 (median), p90 and p99 in ms, and ``items`` (default: samples) per second.

    Args:
        ms: Durations in milliseconds (at least one).
        items: Items the samples processed in all, for the rate; default one per sample.
    """
    ordered = sorted(ms)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 3),
        "per_s": round((items or len(ms)) / (sum(ms) / 1000), 1),
    }
