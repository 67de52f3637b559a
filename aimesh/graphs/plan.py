"""The coordinator's planning step, for models without reliable parallel tool calls.

The model fills in one ``plan`` call, ``{"steps": [{"agent": ..., "request": ...}]}``: up
to :data:`MAX_STEPS` steps, each naming a specialist (an enum of their names, so a
grammar-constrained local model cannot name another) and a self-contained request. The
steps become one coordinator message with a delegation call per distinct specialist, which
the ``delegate`` node runs in parallel, as a remote model's native parallel tool calls
would; the graph is the same for both. A plan with no step means no specialist fits: the
coordinator then says what it cannot answer and what it can, rather than a figure.

Why: Qwen2.5-Coder-1.5B, asked one tool call per decision, reached both specialists of a
two-part question in 0/5 questions (the follow-up decision rarely adds the second); see
``bench/coordinator_routing.py`` for the routing with this step.
"""

from collections.abc import Sequence
from typing import Any
from uuid import uuid4

from langchain_core.messages import AIMessage
from langchain_core.messages.tool import tool_call

from aimesh.agents.specialist import Specialist

PLAN = "plan"
"""Name of the planning tool."""

MAX_STEPS = 3
"""Most specialists one plan may ask (distinct ones)."""


def plan_tool(specialists: Sequence[Specialist]) -> dict[str, Any]:
    """The ``plan`` tool in OpenAI format, its ``agent`` an enum of the specialists' names.

    Args:
        specialists: The specialists the coordinator may delegate to.

    Returns:
        ``{"type": "function", "function": {"name": "plan", "description", "parameters"}}``.
    """
    roles = "; ".join(f"{s.name}: {s.description}" for s in specialists)
    step = {
        "type": "object",
        "properties": {
            "agent": {"type": "string", "enum": [s.name for s in specialists]},
            "request": {
                "type": "string",
                "minLength": 3,
                "maxLength": 300,
                "description": "What this specialist must find, with the user's client ids.",
            },
        },
        "required": ["agent", "request"],
    }
    steps = {"type": "array", "items": step, "maxItems": min(MAX_STEPS, len(specialists))}
    return {
        "type": "function",
        "function": {
            "name": PLAN,
            "description": (
                "Plan which specialists to ask, one step per specialist the question needs "
                f"(no step when none fits). Specialists: {roles}"
            ),
            "parameters": {"type": "object", "properties": {"steps": steps}, "required": ["steps"]},
        },
    }


def delegations(plan: AIMessage) -> AIMessage:
    """The coordinator message that runs a plan: one ``ask_<agent>`` call per specialist.

    A specialist named twice is asked once, with its first request. The plan's usage and
    metadata stay on the message (the model's call produced it).

    Args:
        plan: The model's reply holding one ``plan`` tool call.

    Returns:
        An AIMessage whose tool calls are the delegations, none when the plan has no step.
    """
    steps: dict[str, str] = {}
    for call in plan.tool_calls:
        for step in call["args"].get("steps", []):
            steps.setdefault(str(step["agent"]), str(step["request"]))
    return AIMessage(
        content="",
        tool_calls=[
            tool_call(name=f"ask_{agent}", args={"request": request}, id=f"call_{uuid4().hex}")
            for agent, request in steps.items()
        ],
        usage_metadata=plan.usage_metadata,
        response_metadata=plan.response_metadata,
        id=plan.id,
    )


def cannot_answer(specialists: Sequence[Specialist]) -> str:
    """What the coordinator says when no specialist fits the question."""
    lines = [f"- {s.name.replace('_', ' ')}: {s.description}" for s in specialists]
    return "\n".join(
        [
            "None of aimesh's analyses answers this question, so I give no figure for it. "
            "What I can run on your client book:",
            *lines,
        ]
    )
