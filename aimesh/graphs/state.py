"""State of a coordinator thread: its messages, kept by the checkpointer across questions."""

from typing import Annotated, NotRequired

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class CoordinatorState(TypedDict):
    """A conversation thread: questions, delegations, specialist reports and answers.

    ``memory`` holds the lines recalled from shared memory for the current question.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    memory: NotRequired[list[str]]


def current_turn(messages: list[AnyMessage]) -> list[AnyMessage]:
    """Messages after the last human question (the run now in progress)."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return messages[i + 1 :]
    return list(messages)
