"""What bench/chain_client.py and bench/litellm_client.py share (httpx and stdlib only: the
two run in different virtual environments): arguments, the request, the baseline, timing."""

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

MESSAGES = [{"role": "user", "content": "Which clients may churn?"}]
MAX_TOKENS = 50


def client_args() -> argparse.Namespace:
    """The clients' command line: fake server URLs, call counts, timeout (seconds)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--anthropic-url", required=True)
    parser.add_argument("--openai-url", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to first byte")
    parser.add_argument("--raw", action="store_true", help="time raw provider calls first")
    return parser.parse_args()


async def timed(call: Callable[[], Awaitable[Any]], calls: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``calls`` sequential calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def raw_ms(args: argparse.Namespace) -> list[float]:
    """The baseline: the same Anthropic Messages request with httpx alone ([] without --raw)."""
    if not args.raw:
        return []
    body = {"model": "claude-sonnet-4-5", "max_tokens": MAX_TOKENS, "messages": MESSAGES}
    headers = {"x-api-key": "fake", "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient() as client:

        async def call() -> None:
            url = f"{args.anthropic_url}/v1/messages"
            (await client.post(url, json=body, headers=headers)).raise_for_status()

        return await timed(call, args.calls, args.warmup)
