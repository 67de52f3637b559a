"""Which specialists the coordinator's first step picks, with the local model.

The real coordinator node, prompt and delegation tools; one first step per question (no
specialist runs): a question counts as right when the chosen specialists are exactly the
expected ones (none for a question no specialist can answer). Two modes, measured in the
same session: ``native`` (one tool call per decision, the local model's behaviour before
issue 14) and ``plan`` (the planning step of :mod:`aimesh.graphs.plan`).

The questions were written for this benchmark (not copied from the tests); 9 of them need
two or three specialists and 2 none.

Run: .venv/bin/python bench/coordinator_routing.py [--mode native|plan|both]
Writes bench/results/coordinator_routing.json.
"""

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from langchain_core.messages import HumanMessage

from aimesh.agents.registry import SPECIALISTS
from aimesh.config import Settings
from aimesh.context import Context
from aimesh.graphs.coordinator import Coordinator
from aimesh.graphs.delegation import delegation_tool
from aimesh.llm.gguf import resolve_gguf
from aimesh.llm.local import LocalChatModel

OUT = Path(__file__).parent / "results" / "coordinator_routing.json"
CHURN, BILLING, PRICING = "churn_analyst", "billing_analyst", "pricing_analyst"
QUESTIONS: list[tuple[str, set[str]]] = [
    ("Which accounts look most likely to cancel in the coming months?", {CHURN}),
    ("Give me the ten clients with the highest churn risk.", {CHURN}),
    ("How likely is C00318 to leave, and what is driving it?", {CHURN}),
    (
        "How many of our fiber optic customers are expected to churn, and how much monthly "
        "revenue is at risk?",
        {CHURN},
    ),
    ("Which clients paying by electronic check are most at risk of churning?", {CHURN}),
    ("List the at-risk clients ranked 6 to 10.", {CHURN}),
    ("Why might C06120 cancel its contract?", {CHURN}),
    ("Is anyone being charged more than their services justify?", {BILLING}),
    ("Find billing anomalies across the client base.", {BILLING}),
    ("Which clients' invoices look wrong compared with similar clients?", {BILLING}),
    ("Are there revenue leaks in our billing?", {BILLING}),
    (
        "What monthly price should we charge C02211 to maximise revenue without losing them?",
        {PRICING},
    ),
    ("What would a 5% price increase for clients on two-year contracts do to revenue?", {PRICING}),
    ("Can we raise C04500's rate, and by how much?", {PRICING}),
    (
        "What happens to expected revenue if we cut prices by 3% for month-to-month clients?",
        {PRICING},
    ),
    ("Recommend a price for client C00777.", {PRICING}),
    ("How likely is C01500 to churn, and what price would you recommend for it?", {CHURN, PRICING}),
    ("Show me the top churn risks and any billing anomalies.", {CHURN, BILLING}),
    ("Is C03300 billed correctly, and is it at risk of leaving?", {CHURN, BILLING}),
    ("For C00905: churn risk, a billing check and a recommended price.", {CHURN, BILLING, PRICING}),
    (
        "What revenue is at risk from churn among fiber clients, and what would a 4% price rise "
        "for them do?",
        {CHURN, PRICING},
    ),
    ("Are any clients overbilled, and should we change C02020's price?", {BILLING, PRICING}),
    (
        "Give me a full review: who may churn, who is billed oddly, and how a 2% price rise for "
        "month-to-month clients would play out.",
        {CHURN, BILLING, PRICING},
    ),
    (
        "Which clients pay more than they should, and which clients are most likely to churn?",
        {BILLING, CHURN},
    ),
    (
        "Which clients will likely leave, and what price should we offer C05005 to keep it?",
        {CHURN, PRICING},
    ),
    ("What is the price elasticity of orange juice sales?", set()),
    ("Write a short poem about network switches.", set()),
]


async def route(coordinator: Coordinator, question: str, plan: bool) -> tuple[set[str], float]:
    """The specialists the coordinator's first step asks for ``question``, and its seconds."""
    runtime = SimpleNamespace(context=Context(plan=plan))
    start = time.perf_counter()
    update = await coordinator({"messages": [HumanMessage(question)]}, runtime)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    message = update["messages"][0]
    return {c["name"].removeprefix("ask_") for c in message.tool_calls}, seconds


async def measure(coordinator: Coordinator, mode: str) -> dict:
    """Route every question in ``mode``; print and return the rows and totals."""
    rows = []
    for question, expected in QUESTIONS:
        chosen, seconds = await route(coordinator, question, plan=mode == "plan")
        rows.append(
            {
                "question": question,
                "expected": sorted(expected),
                "chosen": sorted(chosen),
                "right": chosen == expected,
                "decision_s": round(seconds, 2),
            }
        )
    multi = [r for r in rows if len(r["expected"]) > 1]
    summary = {
        "mode": mode,
        "right": sum(r["right"] for r in rows),
        "questions": len(rows),
        "multi_right": sum(r["right"] for r in multi),
        "multi_questions": len(multi),
        "decision_s_median": statistics.median(r["decision_s"] for r in rows[1:]),
        "rows": rows,
    }
    print(f"\n[{mode}] {'question':68} {'chosen':44} {'s':>6}")
    for r in rows:
        mark = "ok " if r["right"] else "BAD"
        print(f"{mark} {r['question'][:68]:68} {','.join(r['chosen']):44} {r['decision_s']:6.1f}")
    print(
        f"[{mode}] right {summary['right']}/{len(rows)} ({summary['multi_right']}/{len(multi)} "
        f"needing several); decision median {summary['decision_s_median']:.1f} s"
    )
    return summary


async def main(modes: list[str]) -> None:
    """Load the local model once and route the questions in each mode."""
    settings = Settings(providers=["local"])
    model = LocalChatModel.from_settings(settings, resolve_gguf(settings))
    tools = [delegation_tool(s, s.build(model)) for s in SPECIALISTS]
    coordinator = Coordinator(model, tools, SPECIALISTS)
    await route(coordinator, "Warm-up: load the model.", plan=False)
    results = {mode: await measure(coordinator, mode) for mode in modes}
    OUT.parent.mkdir(exist_ok=True)
    summary = {
        "benchmark": "coordinator_routing",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model.model_name,
        "modes": results,
    }
    OUT.write_text(json.dumps(summary, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["native", "plan", "both"], default="both")
    mode = parser.parse_args().mode
    asyncio.run(main(["native", "plan"] if mode == "both" else [mode]))
