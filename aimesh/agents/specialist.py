"""What a specialist is, how one is built, and the report it returns to the coordinator."""

from dataclasses import dataclass
from typing import Any, Literal

from langchain.agents import create_agent
from langchain.agents.middleware import ToolErrorMiddleware
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

from aimesh.context import Context
from aimesh.errors import InvalidInputError
from aimesh.prompts import load_prompt


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
    """A specialist agent: a name, what it is for, its tools and its prompt file.

    Attributes:
        name: Agent name, e.g. ``churn_analyst``.
        description: When the coordinator should ask this specialist (its tool docstring).
        tools: The ML tools the agent may call.
        prompt: Name of its system prompt in ``aimesh/prompts``.
    """

    name: str
    description: str
    tools: tuple[BaseTool, ...]
    prompt: str

    def build(self, model: BaseChatModel) -> CompiledStateGraph[Any, Any, Any, Any]:
        """Compile the agent: ``create_agent`` with this specialist's tools and prompt."""
        return create_agent(
            model,
            list(self.tools),
            system_prompt=load_prompt(self.prompt),
            middleware=[ToolErrorMiddleware(on_error=tool_error_message)],
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
    """What a specialist returns to the coordinator: its note and every tool result."""

    agent: str
    request: str
    note: str
    tool_calls: list[ToolCallRecord]

    @classmethod
    def from_messages(
        cls, agent: str, request: str, messages: list[BaseMessage]
    ) -> "SpecialistReport":
        """Collect the specialist's tool calls (paired with their results) and final note."""
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
        note = messages[-1].text if isinstance(messages[-1], AIMessage) else ""
        return cls(agent=agent, request=request, note=note, tool_calls=calls)

    def render(self) -> str:
        """Text the coordinator reads: the tool results first, then the specialist's note."""
        ok = [c.content for c in self.tool_calls if c.status == "success"]
        failed = [c.content for c in self.tool_calls if c.status == "error"]
        parts = [f"{self.agent} results:", *ok]
        if failed and not ok:
            parts.append("Errors: " + " | ".join(failed))
        if not self.tool_calls:
            parts.append("(no tool was called, so there are no figures)")
        parts.append(f"{self.agent} note: {self.note}")
        return "\n".join(parts)
