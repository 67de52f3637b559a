"""Whole answers of the local model to sets of questions, for reading and for the checks.

Every question runs in a new thread on the sample book through the provider chain (local
model only, as offline). Per question: the specialists asked (and, for the routing set,
whether they are exactly the expected ones), the answer, how the answer checks went
(``passed`` first time, ``rewritten`` once, or replaced by the ``findings``), the tool calls
with their arguments, tokens and wall time.

Sets: ``routing`` (the questions of bench/coordinator_routing.py, for the faithfulness
figures) and ``judged`` (21 questions written for issue 14, read answer by answer; none of
them is in the routing set or the tests).

Run: .venv/bin/python bench/answers.py --set judged|routing
Writes bench/results/answers_<set>.json.
"""

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coordinator_routing import QUESTIONS as ROUTING
from langgraph.checkpoint.memory import InMemorySaver

from aimesh.config import Settings
from aimesh.context import Context
from aimesh.graphs.coordinator import build_coordinator
from aimesh.graphs.run import ask
from aimesh.llm.chain import ProviderChain
from aimesh.llm.providers import build_providers
from aimesh.portfolio.sample import sample_book

RESULTS = Path(__file__).parent / "results"
JUDGED = [
    "Which five clients should our account managers call first to prevent cancellations?",
    "Why is client C02544 at risk of leaving?",
    "How many clients on month-to-month contracts are likely to churn, and what monthly "
    "revenue does that put at risk?",
    "Is client C03871 being billed correctly?",
    "What price should we set for C01977 if we accept a slightly higher churn risk?",
    "If we raised prices 10% for everyone, what would happen to revenue and churn?",
    "Which clients with fiber optic internet and no tech support are most likely to churn?",
    "Which clients have the most unusual bills in our book?",
    "What is the churn outlook for senior citizens?",
    "Give me the top 3 churn risks and a recommended price for C04112.",
    "Which clients are billed out of line, and what is C00610's churn risk?",
    "What will our revenue be next quarter?",
    "How many support tickets did C00021 open last month?",
    "Should we lower C06543's price to keep them?",
    "Rank clients 11 to 15 by churn risk.",
    "Which customers paying by credit card are at the highest risk of leaving?",
    "How much revenue would a 7% discount for clients on two-year contracts cost us?",
    "What drives the churn risk of C02290, and is its bill out of line?",
    "Are our longest-standing clients safe from churn?",
    "What is the expected number of churners across the whole book?",
    "Compare the churn risk of C00100 and C00200.",
]


async def main(name: str) -> None:
    """Ask every question of set ``name`` and write the answers with their figures."""
    questions = (
        [(q, sorted(e)) for q, e in ROUTING] if name == "routing" else [(q, None) for q in JUDGED]
    )
    settings = Settings(providers=["local"])
    context = Context.from_settings(settings, sample_book(settings))
    graph = build_coordinator(ProviderChain(providers=build_providers(settings)), InMemorySaver())
    await ask(graph, "Which clients are most likely to churn?", context=context, thread_id="warm")
    rows = []
    for i, (question, expected) in enumerate(questions):
        start = time.perf_counter()
        result = await ask(graph, question, context=context, thread_id=f"{name}-{i}")
        rows.append(
            {
                "question": question,
                "expected": expected,
                "agents": sorted(result.agents),
                "right": None if expected is None else sorted(result.agents) == expected,
                "check": result.check,
                "answer": result.answer,
                "tool_calls": [{"tool": c.tool, "args": c.args} for c in result.tool_calls],
                "tokens": result.tokens.model_dump(),
                "wall_s": round(time.perf_counter() - start, 1),
            }
        )
        print(
            f"[{i + 1}/{len(questions)}] {rows[-1]['wall_s']:6.1f} s "
            f"{result.check or '-':10} {question}",
            flush=True,
        )
        write(name, rows, len(questions))


def write(name: str, rows: list[dict[str, Any]], planned: int) -> None:
    """Write the answers so far with their totals (after every question: a cut run keeps
    what it asked)."""
    checks = Counter(r["check"] for r in rows)
    summary = {
        "benchmark": f"answers_{name}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "questions": len(rows),
        "planned": planned,
        "checks": dict(checks),
        "routed_right": sum(bool(r["right"]) for r in rows) if name == "routing" else None,
        "wall_s_median": statistics.median(r["wall_s"] for r in rows),
        "rows": rows,
    }
    out = RESULTS / f"answers_{name}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"checks: {dict(checks)}; median {summary['wall_s_median']} s; wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["routing", "judged"], required=True)
    asyncio.run(main(parser.parse_args().set))
