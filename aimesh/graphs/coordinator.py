"""The coordinator: a tool-calling agent whose tools are the specialists.

Graph: ``recall`` (shared memory relevant to the question, when the run has memory) ->
``coordinator`` (the LLM decides which specialists to ask, in parallel if several) ->
``delegate`` (runs them) -> ``coordinator`` ... until it answers; the answer's numbers must
be grounded in the specialists' tool results (or in recalled memory) and its wording must
agree with their findings (:mod:`aimesh.graphs.answer_check`).
"""

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolInvocationError
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer

from aimesh.agents.registry import SPECIALISTS
from aimesh.agents.specialist import Specialist
from aimesh.context import Context
from aimesh.errors import DelegationLimitError, InvalidInputError
from aimesh.graphs.answer_check import CHECK, AnswerCheck, feedback, tool_sources
from aimesh.graphs.delegation import delegation_tool
from aimesh.graphs.guards import check_delegations
from aimesh.graphs.plan import (
    PLAN,
    cannot_answer,
    delegations,
    parts_note,
    plan_tool,
    question_parts,
)
from aimesh.graphs.state import CoordinatorState, current_turn
from aimesh.memory.run import render
from aimesh.portfolio.book import ClientBook
from aimesh.prompts import load_prompt

MEMORY_HEADER = (
    "Shared memory of this network recalled for this question (earlier findings, decisions "
    "and user feedback; cite it as memory, not as a new result):"
)


def findings(messages: list[AnyMessage]) -> str:
    """The current question's tool results as plain text: the answer of last resort.

    One paragraph per line (a finding per client), so a markdown view keeps them apart;
    then why each specialist that failed got no result.
    """
    turn = current_turn(messages)
    lines = [line for text in tool_sources(turn) for line in text.splitlines()]
    failed = [
        f"{(m.name or 'a specialist').removeprefix('ask_').replace('_', ' ')} got no result: "
        f"{m.text.removeprefix('Error: ')}"
        for m in turn
        if isinstance(m, ToolMessage) and m.status == "error"
    ]
    return "\n\n".join(lines + failed) or "The specialists returned no figures."


class Coordinator:
    """The ``coordinator`` node: decide delegations, or answer from their results.

    Args:
        model: Chat model (normally the provider chain).
        tools: The delegation tools.
        specialists: The specialists behind them (the plan names them).
    """

    def __init__(
        self, model: BaseChatModel, tools: Sequence[BaseTool], specialists: Sequence[Specialist]
    ) -> None:
        self.model = model
        self.tools = list(tools)
        self.specialists = list(specialists)

    async def __call__(self, state: CoordinatorState, runtime: Runtime[Context]) -> dict:
        """Run one coordinator step; return the new message for the thread.

        The first step of a question must delegate: by a plan when ``context.plan`` (see
        :mod:`aimesh.graphs.plan`), else by native tool calls. Later steps may delegate
        again or answer.
        """
        messages = state["messages"]
        memory = state.get("memory") or []
        prompt = [SystemMessage(load_prompt("coordinator")), *memory_note(memory), *messages]
        first = isinstance(messages[-1], HumanMessage)
        if first and runtime.context.plan:
            reply = await self.plan(prompt)
        else:
            choice = "any" if first else None
            reply = await self.model.bind_tools(self.tools, tool_choice=choice).ainvoke(prompt)
        if reply.tool_calls:
            check_delegations(messages, reply, runtime.context)
            return {"messages": [reply]}
        if first and runtime.context.plan:  # an empty plan: no specialist fits
            return {
                "messages": [reply.model_copy(update={"content": cannot_answer(self.specialists)})]
            }
        return {"messages": [await self.grounded(prompt, reply, runtime.context.book, memory)]}

    async def plan(self, prompt: list[AnyMessage]) -> AIMessage:
        """Ask for a plan and return it as delegations (none when no specialist fits)."""
        parts = question_parts(prompt[-1].text)
        system = SystemMessage(f"{prompt[0].text}\n\n{load_prompt('plan')}")
        bound = self.model.bind_tools([plan_tool(self.specialists, len(parts))], tool_choice=PLAN)
        # the parts come last, so the system prompt and tool catalogue stay a cached prefix
        request = [system, *prompt[1:], HumanMessage(parts_note(parts))]
        names = [s.name for s in self.specialists]
        return delegations(await bound.ainvoke(request), parts, names)

    async def grounded(
        self,
        prompt: list[AnyMessage],
        reply: AIMessage,
        book: ClientBook,
        memory: Sequence[str] = (),
    ) -> AIMessage:
        """Return ``reply`` if it passes the answer check; else ask once for a rewrite.

        The check (:class:`~aimesh.graphs.answer_check.AnswerCheck`): every number is found
        in a question, a tool result or a recalled memory line, and the wording agrees with
        the results' findings. The rewrite request lists every problem (without the failed
        answer, which a small model only repeats); if the rewrite still
        has one, the answer is the current question's tool results themselves, so no
        invented figure or misleading word reaches the user. The answer's
        ``response_metadata[CHECK]`` says which happened: ``passed``, ``rewritten`` or
        ``findings``.
        """
        check = AnswerCheck.of(prompt, memory, book)
        problems = check.problems(reply.text)
        if not problems:
            return _checked(reply, "passed")
        retry = await self.model.ainvoke([*prompt, HumanMessage(feedback(problems))])
        if not check.problems(retry.text):
            return _checked(retry, "rewritten")
        note = "I could not word an answer that matches the models' findings; here they are:"
        return _checked(
            AIMessage(f"{note}\n\n{findings(prompt)}", response_metadata=retry.response_metadata),
            "findings",
        )


def _checked(message: AIMessage, outcome: str) -> AIMessage:
    """``message`` with the answer check's outcome in its ``response_metadata``."""
    metadata = {**message.response_metadata, CHECK: outcome}
    return message.model_copy(update={"response_metadata": metadata})


def memory_note(memory: Sequence[str]) -> list[SystemMessage]:
    """The recalled memory as a system message for the coordinator; [] when there is none."""
    if not memory:
        return []
    lines = "\n".join(f"- {line}" for line in memory)
    return [SystemMessage(f"{MEMORY_HEADER}\n{lines}")]


async def recall(state: CoordinatorState, runtime: Runtime[Context]) -> dict:
    """The ``recall`` node: shared memory relevant to the new question, before delegating."""
    memory = runtime.context.memory
    question = state["messages"][-1]
    if memory is None or not isinstance(question, HumanMessage):
        return {"memory": []}
    return {"memory": render(await memory.recall(question.text))}


def route(state: CoordinatorState) -> str:
    """Go to ``delegate`` when the coordinator asked specialists, else finish."""
    last = state["messages"][-1]
    return "delegate" if isinstance(last, AIMessage) and last.tool_calls else END


def delegation_error(error: Exception) -> str:
    """A bad request, or a specialist that got no result, becomes an error the model reads.

    The coordinator may then answer with the other specialists' results or ask differently;
    its own loop guards still bound how often it may try.
    """
    if isinstance(error, InvalidInputError | DelegationLimitError | ToolInvocationError):
        return f"Error: {error}. Answer with the results you have, or fix the request."
    raise error


def build_coordinator(
    model: BaseChatModel,
    checkpointer: Checkpointer = None,
    specialists: Sequence[Specialist] = SPECIALISTS,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the coordinator graph.

    Args:
        model: Chat model for the coordinator and every specialist.
        checkpointer: Saver for conversation threads (``thread_id``); None = in-memory run.
        specialists: The specialists to delegate to.

    Returns:
        The compiled graph, named ``coordinator``; its context schema is :class:`Context`.
    """
    tools = [delegation_tool(s, s.build(model)) for s in specialists]
    builder = StateGraph(CoordinatorState, context_schema=Context)
    builder.add_node("recall", recall)
    builder.add_node("coordinator", Coordinator(model, tools, specialists))
    builder.add_node("delegate", ToolNode(tools, handle_tool_errors=delegation_error))
    builder.add_edge(START, "recall")
    builder.add_edge("recall", "coordinator")
    builder.add_conditional_edges("coordinator", route, ["delegate", END])
    builder.add_edge("delegate", "coordinator")
    return builder.compile(checkpointer=checkpointer, name="coordinator")
