"""Benchmark: the provider chain's added latency and failover time, side by side with LiteLLM.

The fake providers of the tests (tests/wire/fake_providers.py: the Anthropic Messages and
OpenAI Chat Completions protocols on loopback) run in this process; each client runs in a
process of its own, one after the other, on the same machine:
- bench/chain_client.py: ``ProviderChain`` (anthropic -> openai), every attempt priced and
  written to the ledger (SQLite) before the call returns;
- bench/litellm_client.py: LiteLLM's ``Router`` (anthropic -> openai fallback, its cost
  tracking), in its own virtual environment (``make bench`` builds bench/.venv-litellm).
Measures, per client (medians of every round):
- added latency: p50 of a call through the client minus p50 of the same Messages request
  sent with httpx alone, from the same process;
- switch after a 5xx: the primary answers 500; time from the server receiving the primary's
  request to receiving the fallback's (the server's clock);
- switch after a hang: the primary sends nothing; the same time, which includes the
  time-to-first-byte timeout given to both (``--hang-timeout``).
Targets (issue 5): chain added latency p50 below LiteLLM's in the same run; switch after a
5xx <= 50 ms. Writes bench/results/provider_chain.json.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from timing import percentiles

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.wire: the fake providers

from tests.wire.fake_providers import FakeProviders, Fault, Reply  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "provider_chain.json"
REPLY = Reply(text="C00017 may churn.", input_tokens=120, output_tokens=12)


class Client:
    """One client script run with its own interpreter against the fake server."""

    def __init__(self, name: str, python: str, script: str, server: FakeProviders) -> None:
        self.name, self.python, self.script, self.server = name, python, script, server

    def run(self, calls: int, warmup: int, *extra: str) -> dict[str, Any]:
        """Run the client; fail loudly when it or the fake server saw anything unexpected."""
        command = [
            *(self.python, str(ROOT / "bench" / self.script)),
            *("--anthropic-url", self.server.url("anthropic")),
            *("--openai-url", self.server.url("openai")),
            *("--calls", str(calls), "--warmup", str(warmup), *extra),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{self.name} failed:\n{done.stderr[-3000:]}")
        problems = self.server.errors or self.server.leftover()
        if problems:
            raise RuntimeError(f"{self.name}: the fake server saw {problems}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def added_latency(client: Client, calls: int, warmup: int) -> dict[str, Any]:
    """p50 through the client minus p50 of the raw request (both from the client's process)."""
    client.server.reset()
    client.server.script("anthropic", *[REPLY] * (2 * (calls + warmup)))
    out = client.run(calls, warmup, "--raw")
    raw, tool = percentiles(out["raw_ms"]), percentiles(out["tool_ms"])
    return {
        "raw": raw,
        "call": tool,
        "added_p50_ms": round(tool["p50_ms"] - raw["p50_ms"], 3),
        "last_cost_usd": out["last_cost_usd"],
    }


def switch_ms(client: Client, fault: Fault, calls: int, timeout: float) -> list[float]:
    """Per call: ms from the primary's request reaching the server to the fallback's."""
    client.server.reset()
    client.server.script("anthropic", *[fault] * calls)
    client.server.script("openai", *[REPLY] * calls)
    client.run(calls, 0, "--timeout", str(timeout))
    primary, fallback = client.server.requests("anthropic"), client.server.requests("openai")
    if len(primary) != calls or len(fallback) != calls:
        raise RuntimeError(f"{client.name}: {len(primary)} primary, {len(fallback)} fallback")
    return [(b.at - a.at) * 1000 for a, b in zip(primary, fallback, strict=True)]


def main() -> None:
    """Run the rounds, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--litellm-python", default=str(ROOT / "bench/.venv-litellm/bin/python"))
    parser.add_argument("--calls", type=int, default=300, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--switch-calls", type=int, default=50)
    parser.add_argument("--hang-calls", type=int, default=5)
    parser.add_argument("--hang-timeout", type=float, default=1.0, help="seconds to first byte")
    args = parser.parse_args()
    server = FakeProviders().start()
    clients = [
        Client("aimesh", sys.executable, "chain_client.py", server),
        Client("litellm", args.litellm_python, "litellm_client.py", server),
    ]
    results: dict[str, Any] = {}
    for client in clients:
        rounds = [added_latency(client, args.calls, 20) for _ in range(args.rounds)]
        http_5xx = switch_ms(client, Fault.http(500), args.switch_calls, 5.0)
        hang = Fault.hang_before_headers(args.hang_timeout * 5)
        hung = switch_ms(client, hang, args.hang_calls, args.hang_timeout)
        results[client.name] = {
            "rounds": rounds,
            "added_p50_ms": round(statistics.median(r["added_p50_ms"] for r in rounds), 3),
            "switch_after_500": percentiles(http_5xx),
            "switch_after_hang": percentiles(hung),
        }
    server.stop()
    report(results, args)


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the table and write bench/results/provider_chain.json."""
    print("client   added p50  call p50  5xx switch p50  hang switch p50")
    for name, r in results.items():
        call = statistics.median(x["call"]["p50_ms"] for x in r["rounds"])
        after_500, after_hang = r["switch_after_500"]["p50_ms"], r["switch_after_hang"]["p50_ms"]
        print(
            f"{name:<8} {r['added_p50_ms']:>7.2f}ms {call:>7.2f}ms "
            f"{after_500:>13.2f}ms {after_hang:>14.1f}ms"
        )
    chain, litellm = results["aimesh"], results["litellm"]
    results["targets"] = {
        "added_p50_below_litellm": chain["added_p50_ms"] < litellm["added_p50_ms"],
        "switch_after_500_p50_le_50ms": chain["switch_after_500"]["p50_ms"] <= 50,
    }
    results["setup"] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "calls_per_round": args.calls,
        "rounds": args.rounds,
        "hang_timeout_s": args.hang_timeout,
        "litellm": subprocess.run(
            [
                args.litellm_python,
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
    }
    print(json.dumps(results["targets"]))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def litellm_version(python: str) -> str:
    """The version of LiteLLM installed for ``python``."""
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
