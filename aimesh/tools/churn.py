"""Churn tools: a churn ranking, one client's risk, a segment's outlook.

Each returns the result of :mod:`aimesh.portfolio.scoring` that the scoring API returns.
"""

from typing import Annotated

from langchain.tools import ToolRuntime
from langchain_core.tools import tool
from pydantic import Field

from aimesh.context import Context
from aimesh.portfolio import scoring
from aimesh.portfolio.filters import parse_filters
from aimesh.tools.args import ClientId, Limit, Offset, Segment


@tool(response_format="content_and_artifact")
def top_churn_risks(
    runtime: ToolRuntime[Context],
    limit: Limit = 5,
    offset: Offset = 0,
    filters: Segment | None = None,
) -> tuple[str, dict]:
    """List the clients most likely to churn, highest churn probability first, with reasons.

    Use for "which clients are most likely to churn", "top N at-risk clients" (of a segment
    with filters) and follow-ups like "the five after those" (offset=5, limit=5).
    """
    result = scoring.churn_risks(runtime.context.book, parse_filters(filters or []), limit, offset)
    return result.render(), result.model_dump(mode="json")


@tool(response_format="content_and_artifact")
def client_churn_risk(runtime: ToolRuntime[Context], client_id: ClientId) -> tuple[str, dict]:
    """Give one client's churn probability, its rank in the book and what drives it."""
    result = scoring.client_churn(runtime.context.book, client_id)
    return result.render(), result.model_dump(mode="json")


@tool("churn_summary", response_format="content_and_artifact")
def churn_summary_tool(
    runtime: ToolRuntime[Context],
    filters: Segment | None = None,
    threshold: Annotated[
        float, Field(gt=0, lt=1, description="Churn probability counted as at risk.")
    ] = 0.5,
) -> tuple[str, dict]:
    """Summarise the churn outlook of a segment (or of the whole book).

    Gives the clients, expected churners, share at risk and monthly revenue at risk.

    Use for "how many of our fiber clients will churn", "revenue at risk among clients on
    month-to-month contracts".
    """
    result = scoring.churn_summary(runtime.context.book, parse_filters(filters or []), threshold)
    return result.render(), result.model_dump(mode="json")
