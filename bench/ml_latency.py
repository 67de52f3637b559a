"""Latency of the ML predictions the tools make (run: .venv/bin/python bench/ml_latency.py).

Each case calls the public API on pandas input (so the timings include encoding) many times
with time.perf_counter and reports the median (p50) and 99th percentile (p99) in ms. Models
come from the registry of AIMESH_HOME (trained there first if absent). Writes
bench/results/ml_latency.json.
"""

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from aimesh.config import get_settings
from aimesh.ml.anomaly import billing_features
from aimesh.ml.pricing import recommend_price
from aimesh.portfolio.sample import sample_book

RESULTS = Path(__file__).resolve().parent / "results" / "ml_latency.json"
TARGETS_MS = {"churn predict, 1 row": 1.0, "churn predict, all rows": 50.0}
SAMPLE_ROWS = 200


def measure(call: Callable[[int], Any], repetitions: int, warmup: int = 5) -> np.ndarray:
    """Milliseconds of each of ``repetitions`` calls of ``call(i)``, after a warm-up."""
    for i in range(warmup):
        call(i)
    timings = np.empty(repetitions)
    for i in range(repetitions):
        started = time.perf_counter()
        call(i)
        timings[i] = (time.perf_counter() - started) * 1000
    return timings


def main() -> None:
    book = sample_book(get_settings())
    portfolio = book.frame()
    churn, detector = book.churn(), book.anomaly()
    features = portfolio[churn.model.features]
    billing = billing_features(portfolio)
    picks = np.random.default_rng(0).choice(len(portfolio), SAMPLE_ROWS, replace=False)
    rows = [features.iloc[[i]] for i in picks]
    billing_rows = [billing.iloc[[i]] for i in picks]

    def one(i: int) -> Any:
        return rows[i % SAMPLE_ROWS]

    cases: list[tuple[str, int, Callable[[int], Any], int]] = [
        ("churn predict, 1 row", 1, lambda i: churn.model.predict_proba(one(i)), 3000),
        (
            "churn predict, all rows",
            len(features),
            lambda i: churn.model.predict_proba(features),
            60,
        ),
        ("churn explain, 1 row", 1, lambda i: churn.model.explain(one(i)), 2000),
        (
            "billing anomaly score, 1 row",
            1,
            lambda i: detector.model.score_samples(billing_rows[i % SAMPLE_ROWS]),
            300,
        ),
        (
            "billing anomaly score, all rows",
            len(billing),
            lambda i: detector.model.score_samples(billing),
            30,
        ),
        ("price recommendation, 1 client", 1, lambda i: recommend_price(churn.model, one(i)), 500),
    ]
    results = []
    for name, n_rows, call, repetitions in cases:
        timings = measure(call, repetitions)
        p50, p99 = (float(v) for v in np.percentile(timings, [50, 99]))
        target = TARGETS_MS.get(name)
        results.append(
            {
                "name": name,
                "rows": n_rows,
                "repetitions": repetitions,
                "p50_ms": round(p50, 4),
                "p99_ms": round(p99, 4),
                "target_p50_ms": target,
                "pass": None if target is None else p50 <= target,
            }
        )
    report = {
        "benchmark": "ml_latency",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "models": {"churn": churn.card.version, "billing-anomaly": detector.card.version},
        "results": results,
        "all_targets_met": all(r["pass"] is not False for r in results),
    }
    print_table(results)
    write_json(report)
    print(f"\nwrote {RESULTS}; all targets met: {report['all_targets_met']}")


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'case':34} {'rows':>6} {'reps':>6} {'p50 ms':>9} {'p99 ms':>9} {'target':>8}  result"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        target = "" if r["target_p50_ms"] is None else f"<={r['target_p50_ms']:g}"
        verdict = "" if r["pass"] is None else ("pass" if r["pass"] else "FAIL")
        print(
            f"{r['name']:34} {r['rows']:>6} {r['repetitions']:>6} {r['p50_ms']:>9.3f} "
            f"{r['p99_ms']:>9.3f} {target:>8}  {verdict}"
        )


def write_json(report: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    temporary = RESULTS.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, RESULTS)


if __name__ == "__main__":
    main()
