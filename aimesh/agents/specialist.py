"""What a specialist is, how one is built, and the report it returns to the coordinator."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
    ToolErrorMiddleware,
)
from langchain.agents.middleware.types import ToolCallRequest, hook_config
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from aimesh.agents.given_ids import GivenClientIds
from aimesh.context import Context
from aimesh.errors import DelegationLimitError, InvalidInputError
from aimesh.portfolio.book import ClientBook
from aimesh.portfolio.filters import describe_filterable, mentioned_columns
from aimesh.prompts import load_prompt

MAX_MODEL_CALLS = 3
"""Model calls a specialist may make for one request before it must have results."""


def _last_round(messages: list[Any]) -> list[ToolMessage]:
    """Tool results that came after the model's last reply."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], AIMessage):
            return [m for m in messages[i + 1 :] if isinstance(m, ToolMessage)]
    return []


class SpecialistLoop(AgentMiddleware[AgentState[Any], Context]):
    """A specialist calls tools until one round succeeds, then hands its results over.

    The specialist's job is to pick the analyses and their arguments: every model call must
    call a tool (``tool_choice="any"``), and the run ends as soon as a round of tool calls
    succeeded; its structured results go back to the coordinator, which writes the answer. A
    failed call goes back to the model to fix, within ``MAX_MODEL_CALLS`` model calls.

    Args:
        model_settings: Keyword arguments for each model call of this specialist
            (``temperature``, ``max_tokens``, ``prefer``: provider tried first).
    """

    def __init__(self, model_settings: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model_settings = model_settings or {}

    @hook_config(can_jump_to=["end"])
    def before_model(
        self, state: AgentState[Any], runtime: Runtime[Context]
    ) -> dict[str, Any] | None:
        """End after a successful round; refuse a further call past the limit.

        Raises:
            DelegationLimitError: ``MAX_MODEL_CALLS`` model calls gave no usable result.
        """
        messages = state["messages"]
        results = _last_round(messages)
        if results and all(m.status == "success" for m in results):
            return {"jump_to": "end"}
        calls = sum(isinstance(m, AIMessage) for m in messages)
        if calls >= MAX_MODEL_CALLS:
            raise DelegationLimitError(
                f"a specialist made {calls} model calls without a usable tool result; "
                f"last error: {results[-1].text if results else 'no tool called'}"
            )
        return None

    def wrap_model_call(
        self,
        request: ModelRequest[Context],
        handler: Callable[[ModelRequest[Context]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        """Require a tool call, with this specialist's model settings."""
        return handler(self._override(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Context],
        handler: Callable[[ModelRequest[Context]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        """Require a tool call, with this specialist's model settings."""
        return await handler(self._override(request))

    def _override(self, request: ModelRequest[Context]) -> ModelRequest[Context]:
        settings = {**request.model_settings, **self.model_settings}
        asked = " ".join(m.text for m in request.messages if isinstance(m, HumanMessage))
        book = book_section(request.runtime.context.book, asked)
        prompt = f"{request.system_prompt or ''}\n\n{book}"
        return request.override(
            tool_choice="any", model_settings=settings, system_message=SystemMessage(prompt)
        )


def book_section(book: ClientBook, request: str) -> str:
    """What a specialist is told of the run's client book, for segment filters.

    Whose book, its size, and the columns its request seems to name with their values. A
    request that names none is told to pass no filters: given the whole column list, a
    1.5B model filtered "which clients will churn" on every column.
    """
    rows = book.info.rows
    if book.sample:
        whose = f"the sample book (sample data, not the MSP's own clients), {rows} clients"
    else:
        whose = f"{book.tenant}'s client book v{book.version}, {rows} clients"
    named = mentioned_columns(book.info, request)
    if not named:
        return f"The tools read {whose}. The request names no group of clients: pass no filters."
    return (
        f"The tools read {whose}. For the group of clients the request names, pass filters "
        f"on these columns with these values: {describe_filterable(book.info, named)}"
    )


def tool_error_message(error: Exception, request: ToolCallRequest) -> str | None:
    """Turn bad input from the model into an error ToolMessage it can correct.

    Args:
        error: What the tool raised.
        request: The tool call that failed.

    Returns:
        The message for the model, or None to let other errors propagate.
    """
    if isinstance(error, InvalidInputError):
        return f"Error in {request.tool_call['name']}: {error}. Fix the arguments and retry."
    return None


@dataclass(frozen=True)
class Specialist:
    """A specialist agent: a name, what it is for, its tools and its prompt.

    Attributes:
        name: Agent name, e.g. ``churn_analyst``.
        description: When the coordinator should ask this specialist (its tool docstring).
        tools: The ML tools the agent may call.
        prompt: Name of its system prompt in ``aimesh/prompts``.
        instructions: The system prompt itself (custom agents); overrides ``prompt``.
        model_settings: Per-call model arguments (``temperature``, ``max_tokens``, ``prefer``).
        records: The memory type its results are kept as: ``fact`` (model outputs) or
            ``decision`` (recommendations).
    """

    name: str
    description: str
    tools: tuple[BaseTool, ...] = field(hash=False)  # tools compare equal, not hash
    prompt: str = ""
    instructions: str | None = None
    model_settings: tuple[tuple[str, Any], ...] = ()
    records: Literal["fact", "decision"] = "fact"

    def build(self, model: BaseChatModel) -> CompiledStateGraph[Any, Any, Any, Any]:
        """Compile the agent: ``create_agent`` with this specialist's tools and prompt."""
        return create_agent(
            model,
            list(self.tools),
            system_prompt=self.instructions or load_prompt(self.prompt),
            middleware=[
                SpecialistLoop(dict(self.model_settings)),
                GivenClientIds(),
                ToolErrorMiddleware(on_error=tool_error_message),
            ],
            context_schema=Context,
            checkpointer=False,
            name=self.name,
        )


class ToolCallRecord(BaseModel):
    """One tool call a specialist made and what came back.

    Attributes:
        agent: Specialist that made the call.
        tool: Tool name.
        args: Arguments the model gave.
        result: Structured result (numbers, model version, data source); None on error.
        content: The text the model read.
        status: ``success`` or ``error``.
    """

    agent: str
    tool: str
    args: dict[str, Any]
    result: dict[str, Any] | None
    content: str
    status: Literal["success", "error"]


class SpecialistReport(BaseModel):
    """What a specialist returns to the coordinator: every tool call and its result."""

    agent: str
    request: str
    tool_calls: list[ToolCallRecord]

    @classmethod
    def from_messages(
        cls, agent: str, request: str, messages: list[BaseMessage]
    ) -> "SpecialistReport":
        """Collect the specialist's tool calls, each paired with its result."""
        results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
        calls = [
            ToolCallRecord(
                agent=agent,
                tool=call["name"],
                args=call["args"],
                result=results[call["id"]].artifact,
                content=results[call["id"]].text,
                status=results[call["id"]].status,
            )
            for m in messages
            if isinstance(m, AIMessage)
            for call in m.tool_calls
            if call["id"] in results
        ]
        return cls(agent=agent, request=request, tool_calls=calls)

    def render(self) -> str:
        """Text the coordinator reads: the successful results, else the errors."""
        ok = [c.content for c in self.tool_calls if c.status == "success"]
        failed = [c.content for c in self.tool_calls if c.status == "error"]
        parts = [f"{self.agent} results:", *ok]
        if failed and not ok:
            parts.append("Errors: " + " | ".join(failed))
        if not self.tool_calls:
            parts.append("(no tool was called, so there are no figures)")
        return "\n".join(parts)
