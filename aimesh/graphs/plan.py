"""The coordinator's planning step, for models without reliable parallel tool calls.

Code splits the question into its parts (:func:`question_parts`); the model fills in one
``plan`` call, ``{"steps": [{"agent": ...}]}`` with exactly one step per part, each naming
the specialist that answers that part or ``none`` (an enum, so a grammar-constrained local
model cannot name another). The distinct specialists become one coordinator message with a
delegation per specialist, its request the parts it answers, which the ``delegate`` node
runs in parallel, as a remote model's native parallel tool calls would; the graph is the
same for both. A plan whose every step is ``none`` means no specialist fits: the
coordinator then says what it cannot answer and what it can, rather than a figure.

Why the split is code's: Qwen2.5-Coder-1.5B, asked one tool call per decision, reached both
specialists of a two-part question in 0/9 questions; asked for a list of steps it either
listed every specialist (a price question sent to all three) or, asked to quote each step's
part, quoted the whole question as one part and stopped. Routing one given part at a time
is what it does well (16/16 single-specialist questions); see
``bench/coordinator_routing.py``.
"""

import re
from collections.abc import Collection, Sequence
from typing import Any
from uuid import uuid4

from langchain_core.messages import AIMessage
from langchain_core.messages.tool import tool_call

from aimesh.agents.specialist import Specialist

PLAN = "plan"
"""Name of the planning tool."""

NONE = "none"
"""The ``agent`` of a part that no specialist answers."""

MAX_REQUEST = 300
"""Longest request a delegation takes (characters); each part is cut to fit its share."""

MAX_PARTS = 3
"""Most parts a question is split into (the rest stays in the last part)."""

QUESTION_START = (
    "what|which|who|whom|whose|how|why|when|where|is|are|was|were|do|does|did|can|could|"
    "should|would|will|has|have"
)
CLAUSE_START = f"{QUESTION_START}|show|list|give|find|recommend|tell|rank|compare|check|also|plus"
ITEM_START = "a|an|any|some"


def _splitter(start: str) -> re.Pattern[str]:
    """A pattern of the gap before a new ask: and/or/but/then or a comma, then ``start``.

    The ask has three words or more; the gap is consumed by ``split``.
    """
    ask = rf"(?=(?:{start})\b\s*\S+\s+\S)"
    return re.compile(rf",?\s+(?:and|or|but|then)\s+{ask}|,\s+{ask}", re.IGNORECASE)


_SENTENCE = re.compile(r"(?<=[?!;:.])\s+")
_CLAUSE = _splitter(CLAUSE_START)
_ITEM = _splitter(ITEM_START)
_QUESTION = re.compile(rf"(?:{QUESTION_START})\b", re.IGNORECASE)
_OPENS_ASK = re.compile(rf"(?:{CLAUSE_START}|{ITEM_START})\b", re.IGNORECASE)


def question_parts(question: str) -> list[str]:
    """Split a question into its asks: sentences, then clauses that start a new ask.

    A clause starts a new ask after "and"/"or"/"but"/"then" or a comma when its first word
    is a question word, an auxiliary or an imperative ("..., and what price should we
    offer") and has three words or more ("and why?" stays with the one before it). A
    clause that is not a question is also cut before each item with an indefinite
    article ("Show the top churn risks and any billing anomalies", "churn risk, a billing
    check and a recommended price"); in a question such items are its arguments ("Which
    clients have a fiber plan and a two-year contract?"). A lead-in (:func:`_lead_in`)
    opens the part after it.

    Args:
        question: The user's question.

    Returns:
        1 to :data:`MAX_PARTS` parts, in order.
    """
    parts: list[str] = []
    lead = ""  # a lead-in ("For C00905:") opens the next part
    for sentence in _SENTENCE.split(question.strip()):
        for raw in _asks(sentence):
            clause = f"{lead} {raw}".strip()
            # lead-ins chain ("Thanks. For C00042,"); one ending in ":" opens one clause
            lead = clause if _lead_in(raw) and (raw.endswith(":") or not lead.endswith(":")) else ""
            if clause and not lead:
                parts.append(clause)
    if lead:  # the question ended on a lead-in: it belongs to the part before
        parts = [*parts[:-1], f"{parts[-1]} {lead}"] if parts else [lead]
    parts = parts or [question.strip()]
    return [*parts[: MAX_PARTS - 1], ", ".join(parts[MAX_PARTS - 1 :])][: len(parts)]


def _asks(sentence: str) -> list[str]:
    """A sentence's clauses; a clause that is not a question cut into its items too."""
    clauses = [c.strip(" ,") for c in _CLAUSE.split(sentence)]
    return [
        item.strip(" ,")
        for clause in clauses
        for item in ([clause] if _QUESTION.match(clause) else _ITEM.split(clause))
    ]


def _lead_in(clause: str) -> bool:
    """Whether a clause only opens the next one.

    It does when it ends in ":" ("For C00905:"), or has three words or fewer and does not
    start an ask ("For C00905,", "Then,", "C00042 vs.").
    """
    return clause.endswith(":") or (len(clause.split()) <= 3 and not _OPENS_ASK.match(clause))


def plan_tool(specialists: Sequence[Specialist], parts: int) -> dict[str, Any]:
    """The ``plan`` tool in OpenAI format: exactly ``parts`` steps, each an agent enum.

    Args:
        specialists: The specialists the coordinator may delegate to.
        parts: How many parts the question has (:func:`question_parts`).

    Returns:
        ``{"type": "function", "function": {"name": "plan", "description", "parameters"}}``.
    """
    roles = "; ".join(f"{s.name}: {s.description}" for s in specialists)
    step = {
        "type": "object",
        "properties": {"agent": {"type": "string", "enum": [*(s.name for s in specialists), NONE]}},
        "required": ["agent"],
    }
    steps = {"type": "array", "items": step, "minItems": parts, "maxItems": parts}
    return {
        "type": "function",
        "function": {
            "name": PLAN,
            "description": (
                "For each part of the question, in order, the specialist that answers it, or "
                f"{NONE!r} when none has data or a model for it. Specialists: {roles}"
            ),
            "parameters": {"type": "object", "properties": {"steps": steps}, "required": ["steps"]},
        },
    }


def parts_note(parts: Sequence[str]) -> str:
    """The parts as the model is shown them before it plans."""
    lines = [f"{i}. {part}" for i, part in enumerate(parts, 1)]
    return "\n".join([f"The question has {len(parts)} part(s):", *lines])


def delegations(plan: AIMessage, parts: Sequence[str], names: Collection[str]) -> AIMessage:
    """The coordinator message that runs a plan: one ``ask_<agent>`` call per specialist.

    A specialist's request is the part (or parts) it answers, each cut to its share of
    :data:`MAX_REQUEST` (the specialist is given the whole parts again).
    The plan's usage and metadata stay on the message (the model's call produced it).

    Args:
        plan: The model's reply holding one ``plan`` tool call.
        parts: The question's parts, in the plan's step order.
        names: The specialists' names; a step naming anything else (``none``) is dropped.

    Returns:
        An AIMessage whose tool calls are the delegations, none when no step names one.
    """
    asked: dict[str, list[str]] = {}
    steps = [s for call in plan.tool_calls for s in call["args"].get("steps") or []]
    for part, step in zip(parts, steps, strict=False):
        agent = step.get("agent") if isinstance(step, dict) else step
        if isinstance(agent, str) and agent in names:  # an unconstrained model: any text
            asked.setdefault(agent, []).append(part)
    return AIMessage(
        content="",
        tool_calls=[
            tool_call(
                name=f"ask_{agent}",
                args={"request": "; ".join(part[: MAX_REQUEST // len(p) - 2] for part in p)},
                id=f"call_{uuid4().hex}",
            )
            for agent, p in asked.items()
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
