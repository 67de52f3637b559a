"""Ask the coordinator one question in a thread and collect the answer with its evidence."""

import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

from aimesh.context import Context
from aimesh.errors import AimeshError, InvalidInputError
from aimesh.events import EventName
from aimesh.graphs.answer_check import CHECK
from aimesh.graphs.events import Event, EventRecorder
from aimesh.graphs.state import current_turn
from aimesh.llm.usage import UsageCallback
from aimesh.portfolio.book import ClientBook


class ToolCallSummary(BaseModel):
    """A specialist's tool call as shown to users: who, which tool, arguments, result."""

    agent: str
    tool: str
    args: dict[str, Any]
    result: dict[str, Any] | str | None


class RunTokens(BaseModel):
    """Input and output tokens of every model call of one run, as the providers reported them."""

    input: int
    output: int


class BookRef(BaseModel):
    """The client book a run read.

    Attributes:
        tenant: Whose book (``sample`` for the sample book).
        version: Its version (0: the sample).
        sample: True for the packaged sample data, not the tenant's own.
    """

    tenant: str
    version: int
    sample: bool


class AskResult(BaseModel):
    """The answer to one question and the evidence behind it.

    Attributes:
        answer: The coordinator's final answer.
        thread_id: Conversation thread; pass it again for follow-up questions.
        agents: Specialists called for this question, in order.
        tool_calls: Every ML tool call of those specialists with its structured result.
        model: Model that wrote the final answer.
        tokens: Input and output tokens of all model calls of the run.
        cost_usd: Total cost in USD (genai-prices, summed exactly); None when a provider's
            price is unknown.
        book: The client book the tools read.
        check: How the answer passed the answer check (:meth:`Coordinator.grounded`):
            ``passed``, ``rewritten`` once, or replaced by the ``findings``; None when no
            check ran (no specialist fits the question).
    """

    answer: str
    thread_id: str
    agents: list[str]
    tool_calls: list[ToolCallSummary]
    model: str | None
    tokens: RunTokens
    cost_usd: Decimal | None
    book: BookRef
    check: str | None = None


SAMPLE_ID = re.compile(r"\bC\d{5}\b", re.IGNORECASE)
"""A client id of the sample book (its ids are made from row numbers)."""


def validate_question(question: str, max_chars: int) -> str:
    """Return the stripped question.

    Raises:
        InvalidInputError: If it is empty or longer than ``max_chars`` characters.
    """
    text = question.strip()
    if not text:
        raise InvalidInputError("question", "is empty", "a question in plain language")
    if len(text) > max_chars:
        raise InvalidInputError(
            "question", f"has {len(text)} characters", f"at most {max_chars} characters"
        )
    return text


def check_client_ids(question: str, book: ClientBook) -> None:
    """Refuse a question about a sample client id that is not in the sample book.

    A tenant's own ids have no fixed shape, so only the sample's are recognised in a
    question; an unknown id of a tenant's is refused by the tool that looks it up.

    Raises:
        UnknownClientError: For the first such id, before any model is called.
    """
    if book.sample:
        for client_id in SAMPLE_ID.findall(question):
            book.lookup(client_id)


def _result(
    messages: list[AnyMessage], thread_id: str, usage: UsageCallback, book: ClientBook
) -> AskResult:
    turn = current_turn(messages)
    reports = [
        m.artifact for m in turn if isinstance(m, ToolMessage) and isinstance(m.artifact, dict)
    ]
    answer = messages[-1]
    totals = usage.totals
    return AskResult(
        answer=answer.text,
        thread_id=thread_id,
        agents=list(dict.fromkeys(r["agent"] for r in reports)),
        tool_calls=[
            ToolCallSummary(
                agent=c["agent"],
                tool=c["tool"],
                args=c["args"],
                result=c["result"] if c["status"] == "success" else c["content"],
            )
            for r in reports
            for c in r["tool_calls"]
        ],
        model=answer.response_metadata.get("model_name") if isinstance(answer, AIMessage) else None,
        tokens=RunTokens(input=totals.input_tokens, output=totals.output_tokens),
        cost_usd=totals.cost_usd,
        book=BookRef(tenant=book.tenant, version=book.version, sample=book.sample),
        check=answer.response_metadata.get(CHECK) if isinstance(answer, AIMessage) else None,
    )


async def ask(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    question: str,
    *,
    context: Context,
    thread_id: str | None = None,
    max_chars: int = 2000,
    on_event: Callable[[Event], None] = lambda event: None,
    recorder: EventRecorder | None = None,
) -> AskResult:
    """Ask one question and return the grounded answer with its evidence.

    Args:
        graph: The compiled coordinator (with a checkpointer for follow-ups).
        question: The question in plain language.
        context: Services and limits for the run.
        thread_id: Conversation to continue; a new one when None.
        max_chars: Longest question accepted.
        on_event: Receives every event of the run, in order.
        recorder: The run's event log when the caller keeps it (it has emitted ``started``
            itself); ``on_event`` is then unused.

    Raises:
        InvalidInputError: Empty or over-long question, or an unknown client id in it.
        AimeshError: Any failure of the run (all providers failed, loop guard, ...),
            after an ``error`` event.
    """
    text = validate_question(question, max_chars)
    check_client_ids(text, context.book)
    thread_id = thread_id or uuid.uuid4().hex
    run_id = uuid.uuid4()
    if recorder is None:
        recorder = EventRecorder(str(run_id), on_event)
        recorder.emit(EventName.STARTED, data={"question": text, "thread_id": thread_id})
    usage = UsageCallback()
    config: RunnableConfig = {
        "configurable": {"thread_id": thread_id},
        "callbacks": [recorder, usage],
        "run_id": run_id,
        "recursion_limit": 4 * context.max_delegations + 8,
    }
    try:
        state = await graph.ainvoke({"messages": [HumanMessage(text)]}, config, context=context)
    except AimeshError as error:
        recorder.emit(EventName.ERROR, data={"type": type(error).__name__, "message": str(error)})
        raise
    result = _result(state["messages"], thread_id, usage, context.book)
    recorder.emit(EventName.RESULT, model=result.model, data=result.model_dump(mode="json"))
    recorder.emit(EventName.COMPLETE, tokens=result.tokens.model_dump(), cost_usd=result.cost_usd)
    return result
