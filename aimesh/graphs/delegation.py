"""Specialists as tools of the coordinator ("agents as tools")."""

from typing import Annotated, Any

from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph.state import CompiledStateGraph
from pydantic import Field

from aimesh.agents.specialist import Specialist, SpecialistReport
from aimesh.context import Context
from aimesh.graphs.answer_check import tool_sources
from aimesh.graphs.events import DELEGATE_KEY
from aimesh.graphs.plan import question_parts
from aimesh.graphs.state import current_turn
from aimesh.portfolio.book import ClientBook
from aimesh.portfolio.ids import ids_in

Request = Annotated[
    str,
    Field(
        min_length=3,
        max_length=300,
        description="Self-contained request for the specialist, with any client ids.",
    ),
]


def _report_of(message: ToolMessage) -> str | None:
    """The specialist whose report ``message`` carries, if it carries one."""
    return message.artifact.get("agent") if isinstance(message.artifact, dict) else None


def earlier_work(messages: list, agent: str) -> str:
    """What was asked before in the thread and what this specialist did for it.

    Args:
        messages: The coordinator thread's messages, the current question last.
        agent: Specialist name.

    Returns:
        Lines naming earlier questions and the specialist's tool calls with the first line
        of each result (e.g. "Clients ranked 1-5 of 7043 ..."), or "" on a new thread.
    """
    lines = []
    for m in messages[: -1 - len(current_turn(messages))]:
        if isinstance(m, HumanMessage):
            lines.append(f"- the user asked: {m.text}")
        elif isinstance(m, ToolMessage) and _report_of(m) == agent:
            lines.extend(
                f"- you called {c['tool']} with {c['args']}: {c['content'].splitlines()[0]}"
                for c in m.artifact["tool_calls"]
                if c["content"]
            )
    return "Earlier in this conversation:\n" + "\n".join(lines) if lines else ""


def specialist_prompt(messages: list, agent: str, request: str, book: ClientBook) -> str:
    """The message a specialist gets: earlier work, the request and the user's question.

    The user's own question travels with the coordinator's request, so client ids and
    intent reach the specialist even when the coordinator's wording drops them; it comes
    last because a small model follows the last text most: with the question first, the
    local model took a request that paraphrased the churn ranking over the client id the
    user named (1/1 wrong; 5/5 right with the question last).

    A request that is some of the question's own parts (a plan's, :mod:`aimesh.graphs.plan`,
    perhaps cut to fit the request's length) is given instead of the question, whole, with
    the client ids the rest of the question names: given the whole two-part question, even
    with its part after it, the churn analyst filtered its ranking by the other part's
    "billed out of line" (3/3 calls refused) and no churn result came back.

    Args:
        messages: The coordinator thread's messages (the current question is the last
            human message).
        agent: Specialist name.
        request: The coordinator's request (a plan's parts are joined by ``"; "``).
        book: The run's client book (for the client ids the question names).

    Returns:
        The prompt text.
    """
    question = next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))
    asked = question_parts(question)
    mine = [next((p for p in asked if p.startswith(r.strip())), None) for r in request.split("; ")]
    if request.strip() == question.strip() or mine == asked:
        parts = [f"The user asks: {question}"]
    elif None not in mine:
        own = "; ".join(p for p in mine if p is not None)
        named = [i for i in ids_in(question, book) if i not in ids_in(own, book)]
        parts = [
            f"The user asks (your part of a longer question; other analysts answer the rest): "
            f"{own}",
            f"Client ids in the whole question: {', '.join(named)}" if named else "",
        ]
    else:
        parts = [f"Request from the coordinator: {request}", f"The user asks: {question}"]
    return "\n\n".join(filter(None, [earlier_work(messages, agent), *parts]))


def delegation_tool(
    specialist: Specialist, agent: CompiledStateGraph[Any, Any, Any, Any]
) -> BaseTool:
    """Wrap a compiled specialist as the coordinator tool ``ask_<name>``.

    The tool returns the specialist's report: text for the model, the structured
    :class:`SpecialistReport` as the ToolMessage artifact.
    """

    async def ask(request: Request, runtime: ToolRuntime[Context]) -> tuple[str, dict]:
        state = runtime.state
        prompt = specialist_prompt(
            state["messages"], specialist.name, request, runtime.context.book
        )
        if state.get("memory"):
            prompt = "\n".join(["Shared memory (recalled):", *state["memory"], "", prompt])
        given = tool_sources(state["messages"])
        out = await agent.ainvoke(
            {"messages": [HumanMessage(prompt)], "given": given}, context=runtime.context
        )
        report = SpecialistReport.from_messages(specialist.name, request, out["messages"])
        await remember(report, specialist, runtime.context)
        return report.render(), report.model_dump(mode="json")

    return StructuredTool.from_function(
        coroutine=ask,
        name=f"ask_{specialist.name}",
        description=specialist.description,
        response_format="content_and_artifact",
        metadata={DELEGATE_KEY: specialist.name},
    )


async def remember(report: SpecialistReport, specialist: Specialist, context: Context) -> None:
    """Write each successful tool result to shared memory, as the specialist's kind of item.

    Pricing recommendations are decisions; churn scores and anomalies are facts
    (:attr:`Specialist.records`).
    """
    if context.memory is None:
        return
    for call in report.tool_calls:
        if call.status == "success":
            text = f"{report.request} -> {call.tool}: {call.content}"
            await context.memory.record(specialist.records, text, specialist.name)


def delegations(message: AIMessage) -> list[tuple[str, str]]:
    """(tool name, request) of each delegation in a coordinator message."""
    return [(c["name"], str(c["args"].get("request", ""))) for c in message.tool_calls]
