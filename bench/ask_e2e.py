"""End-to-end `ask` wall time with the local model, per example question (median of N runs).

Run: .venv/bin/python bench/ask_e2e.py [N]   (default N=3). Models must be trainable or
already in $AIMESH_HOME; the first question of the first run includes model loading.
"""

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from aimesh.config import Settings
from aimesh.context import Context
from aimesh.graphs.coordinator import build_coordinator
from aimesh.graphs.run import ask
from aimesh.llm.chain import ProviderChain
from aimesh.llm.providers import build_providers

QUESTIONS = [
    "Which of our clients are most likely to churn, and why?",
    "Are any clients billed out of line with the services they have?",
    "What price change would you recommend for client C01234 without raising its churn risk?",
]
OUT = Path(__file__).parent / "results" / "ask_e2e.json"


async def main(runs: int) -> None:
    settings = Settings(providers=["local"])
    context = Context.from_settings(settings)
    chain = ProviderChain(providers=build_providers(settings))
    graph = build_coordinator(chain, checkpointer=InMemorySaver())
    t0 = time.perf_counter()
    for trained in (context.ml.churn, context.ml.anomaly):
        trained()
    warmup = time.perf_counter() - t0
    rows = []
    for question in QUESTIONS:
        times, tokens, agents = [], [], []
        for i in range(runs):
            start = time.perf_counter()
            result = await ask(graph, question, context=context, thread_id=f"bench-{i}-{question}")
            times.append(time.perf_counter() - start)
            tokens.append(result.tokens.input + result.tokens.output)
            agents.append(",".join(result.agents))
        rows.append(
            {
                "question": question,
                "runs": runs,
                "wall_s_median": round(statistics.median(times), 2),
                "wall_s_min": round(min(times), 2),
                "wall_s_max": round(max(times), 2),
                "tokens_median": statistics.median(tokens),
                "agents": sorted(set(agents)),
            }
        )
    print(f"model load/training before the first question: {warmup:.1f} s")
    print(f"{'question':70} {'median s':>9} {'min':>7} {'max':>7} {'tokens':>7}")
    for r in rows:
        print(
            f"{r['question'][:70]:70} {r['wall_s_median']:9.2f} {r['wall_s_min']:7.2f} "
            f"{r['wall_s_max']:7.2f} {r['tokens_median']:7.0f}"
        )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {"benchmark": "ask_e2e", "model_setup_s": round(warmup, 2), "rows": rows}, indent=2
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
