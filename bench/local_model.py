"""The local model through LocalChatModel vs llama-cpp-python directly.

Measures, on the same prompts and with two Llama instances built with the same settings
(runs interleaved so that CPU contention hits both alike):

* generation speed while streaming: tokens/s between the first and the last token
  (prompt evaluation excluded), median over runs;
* end-to-end latency of a non-streamed call, median over runs;
* the adapter's overhead on both, in percent of llama-cpp-python's figure.

Tool decisions are measured on the real coordinator in bench/coordinator_routing.py.

Run: .venv/bin/python bench/local_model.py [--runs N] [--threads T] [--max-tokens M]
Writes bench/results/local_model.json.
"""

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from llama_cpp import Llama

from aimesh.config import Settings
from aimesh.llm.gguf import resolve_gguf
from aimesh.llm.local import LocalChatModel

OUT = Path(__file__).parent / "results" / "local_model.json"
SYSTEM = "You are a concise assistant for a Managed Service Provider."
PROMPTS = [
    "Explain what a managed service provider does, in one paragraph.",
    "List five signs that a client may cancel an IT support contract, with one sentence each.",
    "Describe how to detect billing anomalies in monthly invoices.",
]


def decode_rate(pieces: Iterator[str]) -> tuple[float, int]:
    """Tokens/s between the first and the last non-empty piece, and the piece count."""
    stamps = [time.perf_counter() for piece in pieces if piece]
    if len(stamps) < 2:
        return 0.0, len(stamps)
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps)


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def pct(adapter: float, direct: float) -> float:
    return round(100 * (adapter - direct) / direct, 2)


def measure_generation(
    llama: Llama, model: LocalChatModel, runs: int, max_tokens: int
) -> dict[str, Any]:
    direct_tps: list[float] = []
    adapter_tps: list[float] = []
    direct_s: list[float] = []
    adapter_s: list[float] = []
    counts: set[tuple[int, int]] = set()
    options = {"temperature": model.temperature, "max_tokens": max_tokens}
    for _ in range(runs):
        for prompt in PROMPTS:
            turns = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
            messages = [SystemMessage(SYSTEM), HumanMessage(prompt)]
            stream = llama.create_chat_completion(turns, stream=True, **options)
            rate, direct_count = decode_rate(
                c["choices"][0]["delta"].get("content") or "" for c in stream
            )
            direct_tps.append(rate)
            rate, adapter_count = decode_rate(c.text for c in model.stream(messages))
            adapter_tps.append(rate)
            counts.add((direct_count, adapter_count))
            direct_s.append(timed(lambda t=turns: llama.create_chat_completion(t, **options)))
            adapter_s.append(timed(lambda m=messages: model.invoke(m)))
    direct_rate, adapter_rate = statistics.median(direct_tps), statistics.median(adapter_tps)
    direct_latency, adapter_latency = statistics.median(direct_s), statistics.median(adapter_s)
    return {
        "stream_tokens_per_s": {
            "llama_cpp": round(direct_rate, 2),
            "adapter": round(adapter_rate, 2),
            "overhead_pct": pct(direct_rate / adapter_rate, 1.0) if adapter_rate else None,
        },
        "invoke_latency_s": {
            "llama_cpp": round(direct_latency, 3),
            "adapter": round(adapter_latency, 3),
            "overhead_pct": pct(adapter_latency, direct_latency),
        },
        "samples": len(direct_tps),
        "same_token_counts": all(a == b for a, b in counts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="default: AIMESH_LOCAL_THREADS or all cores"
    )
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    settings = Settings()
    threads = args.threads or settings.local_threads or os.cpu_count()
    path = resolve_gguf(settings)
    model = LocalChatModel(
        model_path=path,
        n_ctx=settings.local_n_ctx,
        n_threads=threads,
        temperature=settings.temperature,
        max_tokens=args.max_tokens,
        prompt_cache_mb=0,  # same llama settings as the direct instance; ask_e2e runs with it
    )
    load_s = timed(lambda: model.invoke([HumanMessage("Say OK.")]))
    llama = Llama(model_path=str(path), n_ctx=model.n_ctx, n_threads=threads, verbose=False)
    llama.create_chat_completion([{"role": "user", "content": "Say OK."}], max_tokens=4)
    load_before = os.getloadavg()
    generation = measure_generation(llama, model, args.runs, args.max_tokens)
    result = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model.model_name,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "n_ctx": model.n_ctx,
        "max_tokens": args.max_tokens,
        "runs": args.runs,
        "first_call_with_load_s": round(load_s, 2),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        **generation,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)


def print_table(result: dict[str, Any]) -> None:
    stream, invoke = result["stream_tokens_per_s"], result["invoke_latency_s"]
    print(
        f"{result['model']}  threads={result['threads']}/{result['cpu_count']}  "
        f"runs={result['runs']}  load average {result['load_average_before_after']}"
    )
    print(f"{'metric':<34}{'llama-cpp':>12}{'adapter':>12}{'overhead':>11}")
    for label, row in (
        ("generation, tokens/s (median)", stream),
        ("non-streamed call, s (median)", invoke),
    ):
        print(f"{label:<34}{row['llama_cpp']:>12}{row['adapter']:>12}{row['overhead_pct']:>10}%")
    print(
        f"same token counts both ways: {result['same_token_counts']}; "
        f"first call incl. load: {result['first_call_with_load_s']} s"
    )
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
