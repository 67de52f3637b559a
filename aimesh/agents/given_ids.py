"""Client ids a specialist may use: only those the user gave or an earlier result showed.

A small model copies ids from wherever it saw one (a prompt example, an error message):
on the held-out questions of issue 14, 4 runs in 20 called a tool for a client the question
never named, and the answer presented that client as the result. So a tool call whose
``client_id`` appears in none of the thread's questions and earlier results is refused
before the tool runs, with an error the model can act on. The coordinator's own request
does not count: it is model text too.
"""

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NotRequired, cast

from langchain.agents.middleware import AgentMiddleware, AgentState
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from aimesh.context import Context
from aimesh.errors import UnknownClientError
from aimesh.portfolio.book import ClientBook
from aimesh.portfolio.ids import SAMPLE_LIKE, find_ids


class GivenState(AgentState[Any]):
    """A specialist's state, with the texts its client ids must come from.

    ``given``: the thread's questions and successful tool results (the delegation puts
    them here; recalled memory is not among them); absent, only the specialist's own
    input messages count.
    """

    given: NotRequired[list[str]]


def _normalized(book: ClientBook, value: str) -> str | None:
    try:
        return book.normalize_id(value)
    except UnknownClientError:
        return None


def was_given(client_id: str, texts: Iterable[str], book: ClientBook) -> bool:
    """Whether ``client_id`` (as written, or in the book's form) occurs in ``texts``.

    For the sample book, ids written in another form (``C42`` for ``C00042``) count too.
    """
    value = client_id.strip()
    key = _normalized(book, value)
    for text in texts:
        if find_ids(text, [value] if key is None else [value, key]):
            return True
        if (
            book.sample
            and key is not None
            and key in {_normalized(book, m) for m in SAMPLE_LIKE.findall(text)}
        ):
            return True
    return False


class GivenClientIds(AgentMiddleware[AgentState[Any], Context]):
    """Refuse a tool call whose ``client_id`` nobody gave (see the module docstring)."""

    state_schema = GivenState

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        """Run the call, or return an error message when its client id was not given."""
        return self._refusal(request) or handler(request)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        """Run the call, or return an error message when its client id was not given."""
        return self._refusal(request) or await handler(request)

    def _refusal(self, request: ToolCallRequest) -> ToolMessage | None:
        call = request.tool_call
        client_id = call["args"].get("client_id")
        if not isinstance(client_id, str):
            return None
        state = request.state
        texts = state.get("given") or [m.text for m in state["messages"] if m.type == "human"]
        context = cast(Context, request.runtime.context)
        if was_given(client_id, texts, context.book):
            return None
        return ToolMessage(
            f"Error in {call['name']}: client_id {client_id!r} is named neither in the user's "
            "question nor in an earlier result. Use only a client id the user gave; for "
            "questions about many clients use a tool that ranks or summarises them.",
            tool_call_id=call["id"],
            name=call["name"],
            status="error",
        )
