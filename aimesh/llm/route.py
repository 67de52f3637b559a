"""The route of a run: which chain links (``provider/model``) its model calls may use, in order.

The runner chooses a route per task (model selection, budget) and sets it around the run
with :func:`use_route`; the provider chain reads it with :func:`current_route`. A context
variable, so LangGraph's tasks and threads of the run inherit it and concurrent runs do
not see each other's.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

_route: ContextVar[tuple[str, ...] | None] = ContextVar("aimesh_model_route", default=None)


def link_key(provider: str, model: str) -> str:
    """The key of a chain link, ``"provider/model"`` (e.g. ``"openai/gpt-4.1-mini"``)."""
    return f"{provider}/{model}"


def current_route() -> tuple[str, ...] | None:
    """The link keys the current run may use, in order; None = the default chain."""
    return _route.get()


@contextmanager
def use_route(keys: Sequence[str] | None) -> Iterator[None]:
    """Restrict the model calls made inside the block to ``keys``, in that order.

    Args:
        keys: Link keys (``provider/model``); None restores the default chain.

    Raises:
        ValueError: ``keys`` is an empty sequence (a run that may call no model).
    """
    if keys is not None and not keys:
        raise ValueError("a route needs at least one provider/model")
    token = _route.set(None if keys is None else tuple(keys))
    try:
        yield
    finally:
        _route.reset(token)
