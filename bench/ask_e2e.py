"""End-to-end `ask` wall time with the local model, per README question, and where it goes.

Each question runs N times in new threads on the sample book through the provider chain
(local model only, the coordinator planning as it does offline); one warm-up question first
loads the model and the book's models. Per question: median wall time, prompt tokens read
and tokens generated per run, and per model call (coordinator or specialist) its median
seconds and tokens, and the generation speed over the run.

Run: .venv/bin/python bench/ask_e2e.py [N]   (default N=3)
Writes bench/results/ask_e2e.json.
"""

import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from aimesh.config import Settings
from aimesh.context import Context
from aimesh.graphs.coordinator import build_coordinator
from aimesh.graphs.events import Event
from aimesh.graphs.run import AskResult, ask
from aimesh.llm.chain import ProviderChain
from aimesh.llm.providers import build_providers
from aimesh.portfolio.sample import sample_book

README_QUESTIONS = [
    "Which of our clients are most likely to churn, and why?",
    "Are any clients billed out of line with the services they have?",
    "What price change would you recommend for client C01234 without raising its churn risk?",
]
OUT = Path(__file__).parent / "results" / "ask_e2e.json"


class CallTimes:
    """The model calls of one run, from its events: agent, seconds, tokens.

    A call's seconds run from the previous call's end (or the run's start) to its own
    ``model_call`` event, so they include the little tool work between calls; the local
    model runs one call at a time, so calls do not overlap.
    """

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.calls: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        """Record a ``model_call`` event."""
        if event.data.get("status") != "model_call":
            return
        now = time.perf_counter()
        tokens = event.tokens or {"input": 0, "output": 0}
        self.calls.append({"agent": event.agent, "s": now - self.last, **tokens})
        self.last = now


async def main(runs: int) -> None:
    """Warm up, then ask each README question ``runs`` times and write the summary."""
    settings = Settings(providers=["local"])
    context = Context.from_settings(settings, sample_book(settings))
    graph = build_coordinator(ProviderChain(providers=build_providers(settings)), InMemorySaver())
    t0 = time.perf_counter()
    await ask(graph, README_QUESTIONS[0], context=context, thread_id="warm-up")
    warm_up = time.perf_counter() - t0
    rows = []
    for question in README_QUESTIONS:
        samples = []
        for i in range(runs):
            times = CallTimes()
            result = await ask(
                graph, question, context=context, thread_id=f"bench-{i}-{question}", on_event=times
            )
            samples.append((time.perf_counter() - times.start, result, times.calls))
        rows.append(summarise(question, samples))
    print(f"warm-up question (model load, book models): {warm_up:.1f} s")
    print(f"{'question':64} {'median s':>9} {'prompt':>7} {'gen':>5} {'gen tok/s':>9}")
    for r in rows:
        print(
            f"{r['question'][:64]:64} {r['wall_s_median']:9.1f} {r['prompt_tokens_median']:7} "
            f"{r['output_tokens_median']:5} {r['output_tok_per_s']:9.1f}"
        )
        for c in r["calls"]:
            print(
                f"    {c['call']:40} {c['s_median']:6.1f} s "
                f"{c['input_median']:6} in {c['output_median']:5} out"
            )
    OUT.write_text(
        json.dumps(
            {
                "benchmark": "ask_e2e",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "model": "local only (AIMESH providers=[local])",
                "warm_up_s": round(warm_up, 1),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {OUT}")


def summarise(
    question: str, samples: list[tuple[float, AskResult, list[dict[str, Any]]]]
) -> dict[str, Any]:
    """Medians over the runs of one question, and of its calls in call order."""
    walls = [wall for wall, _, _ in samples]
    results = [r for _, r, _ in samples]
    outputs = sum(r.tokens.output for r in results)
    return {
        "question": question,
        "runs": len(samples),
        "wall_s_median": round(statistics.median(walls), 1),
        "wall_s_min": round(min(walls), 1),
        "wall_s_max": round(max(walls), 1),
        "agents": sorted({a for r in results for a in r.agents}),
        "prompt_tokens_median": statistics.median(r.tokens.input for r in results),
        "output_tokens_median": statistics.median(r.tokens.output for r in results),
        "output_tok_per_s": round(outputs / sum(walls), 1),
        "calls": calls_by_position(calls for _, _, calls in samples),
        "answers": [r.answer for r in results],
    }


def calls_by_position(runs: Any) -> list[dict[str, Any]]:
    """Median seconds and tokens of the k-th call of the runs, named by its agent."""
    runs = list(runs)
    out = []
    for k in range(max(len(calls) for calls in runs)):
        nth = [calls[k] for calls in runs if len(calls) > k]
        out.append(
            {
                "call": f"{k + 1}. {nth[0]['agent']}",
                "runs": len(nth),
                "s_median": round(statistics.median(c["s"] for c in nth), 1),
                "input_median": statistics.median(c["input"] for c in nth),
                "output_median": statistics.median(c["output"] for c in nth),
            }
        )
    return out


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
