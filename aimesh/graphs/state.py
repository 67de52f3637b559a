"""State of a coordinator thread: its messages, kept by the checkpointer across questions."""

from typing import Annotated

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class CoordinatorState(TypedDict):
    """A conversation thread: questions, delegations, specialist reports and answers."""

    messages: Annotated[list[AnyMessage], add_messages]


def current_turn(messages: list[AnyMessage]) -> list[AnyMessage]:
    """Messages after the last human question (the run now in progress)."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return messages[i + 1 :]
    return list(messages)
