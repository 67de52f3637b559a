"""Which specialists the coordinator's first decision picks, with the local model.

The real coordinator prompt and delegation tools, one model decision per question (no
specialist runs): a question counts as right when the chosen specialists are exactly the
expected ones. Shows how well the local model routes, question by question, and how long a
decision takes.

Run: .venv/bin/python bench/coordinator_routing.py
Writes bench/results/coordinator_routing.json.
"""

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from langchain_core.messages import HumanMessage, SystemMessage

from aimesh.agents.registry import SPECIALISTS
from aimesh.config import Settings
from aimesh.graphs.delegation import delegation_tool
from aimesh.llm.gguf import resolve_gguf
from aimesh.llm.local import LocalChatModel
from aimesh.prompts import load_prompt

OUT = Path(__file__).parent / "results" / "coordinator_routing.json"
CHURN, BILLING, PRICING = "churn_analyst", "billing_analyst", "pricing_analyst"
QUESTIONS = [
    ("Which of our clients are most likely to churn, and why?", {CHURN}),
    ("Are any clients billed out of line with the services they have?", {BILLING}),
    (
        "What price change would you recommend for client C01234 without raising its churn risk?",
        {PRICING},
    ),
    ("Which clients are at risk of leaving us?", {CHURN}),
    ("Why is client C00042 likely to cancel?", {CHURN}),
    ("Do we undercharge anyone for what they use?", {BILLING}),
    ("Should we raise the price for C00100?", {PRICING}),
    ("Which clients are likely to churn, and are any of them billed oddly?", {CHURN, BILLING}),
]


async def main() -> None:
    settings = Settings(providers=["local"])
    model = LocalChatModel.from_settings(settings, resolve_gguf(settings))
    tools = [delegation_tool(s, s.build(model)) for s in SPECIALISTS]
    bound = model.bind_tools(tools, tool_choice="any")
    system = SystemMessage(load_prompt("coordinator"))
    rows = []
    for question, expected in QUESTIONS:
        start = time.perf_counter()
        reply = await bound.ainvoke([system, HumanMessage(question)])
        chosen = {c["name"].removeprefix("ask_") for c in reply.tool_calls}
        rows.append(
            {
                "question": question,
                "expected": sorted(expected),
                "chosen": sorted(chosen),
                "right": chosen == expected,
                "decision_s": round(time.perf_counter() - start, 2),
            }
        )
    right = sum(r["right"] for r in rows)
    print(f"{'question':72} {'chosen':34} {'s':>6}")
    for r in rows:
        mark = "ok " if r["right"] else "BAD"
        print(f"{mark} {r['question'][:68]:68} {','.join(r['chosen']):34} {r['decision_s']:6.1f}")
    median = statistics.median(r["decision_s"] for r in rows[1:])  # first includes loading
    print(f"right: {right}/{len(rows)}; decision median (excluding the first): {median:.1f} s")
    OUT.parent.mkdir(exist_ok=True)
    summary = {
        "benchmark": "coordinator_routing",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model.model_name,
        "right": right,
        "questions": len(rows),
        "decision_s_median": median,
        "rows": rows,
    }
    OUT.write_text(json.dumps(summary, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
