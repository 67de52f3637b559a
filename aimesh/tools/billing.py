"""Billing tool: clients billed out of line with what the book records of them."""

from langchain.tools import ToolRuntime
from langchain_core.tools import tool

from aimesh.context import Context
from aimesh.portfolio import scoring
from aimesh.portfolio.filters import parse_filters
from aimesh.tools.args import Limit, Offset, Segment


@tool(response_format="content_and_artifact")
def billing_anomalies(
    runtime: ToolRuntime[Context],
    limit: Limit = 5,
    offset: Offset = 0,
    filters: Segment | None = None,
) -> tuple[str, dict]:
    """List clients whose billing is most out of line, most anomalous first.

    Out of line means charges that do not fit the client's services and usage, its tenure
    (total billed vs monthly x months) or similar clients: possible revenue leaks or billing
    errors.
    """
    book = runtime.context.book
    result = scoring.billing_anomalies(book, parse_filters(filters or []), limit, offset)
    return result.render(), result.model_dump(mode="json")
