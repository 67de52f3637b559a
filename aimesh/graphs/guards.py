"""Loop guards: a cap on delegations per question and on repeats of one delegation."""

from collections import Counter

from langchain_core.messages import AIMessage, AnyMessage

from aimesh.context import Context
from aimesh.errors import DelegationLimitError
from aimesh.graphs.delegation import delegations
from aimesh.graphs.state import current_turn


def check_delegations(messages: list[AnyMessage], reply: AIMessage, context: Context) -> None:
    """Refuse a coordinator step that would exceed the loop limits.

    Args:
        messages: The thread so far; the current question's delegations follow its last
            human message.
        reply: The coordinator's new message with its tool calls.
        context: Holds ``max_delegations`` and ``max_repeats``.

    Raises:
        DelegationLimitError: Too many delegations for one question, or the same delegation
            (specialist and request) asked for more than ``max_repeats`` times.
    """
    turn = [m for m in current_turn(messages) if isinstance(m, AIMessage)]
    asked = [d for m in [*turn, reply] for d in delegations(m)]
    if len(asked) > context.max_delegations:
        raise DelegationLimitError(
            f"the coordinator asked for {len(asked)} delegations for one question; the cap is "
            f"{context.max_delegations} (AIMESH_MAX_DELEGATIONS). Ask a narrower question."
        )
    (name, request), times = Counter(asked).most_common(1)[0]
    if times > context.max_repeats:
        raise DelegationLimitError(
            f"the coordinator asked {name} {times} times for {request!r}; the same delegation "
            f"may run at most {context.max_repeats} time(s) per question (AIMESH_MAX_REPEATS)."
        )
