"""Pricing tools: one client's revenue-maximising price, a segment's price change impact."""

from typing import Annotated

from langchain.tools import ToolRuntime
from langchain_core.tools import tool
from pydantic import Field

from aimesh.context import Context
from aimesh.portfolio import scoring
from aimesh.portfolio.filters import parse_filters
from aimesh.portfolio.scoring import MAX_PRICE_CHANGE_PCT
from aimesh.tools.args import ClientId, Segment


@tool("recommend_price", response_format="content_and_artifact")
def recommend_price_tool(
    runtime: ToolRuntime[Context],
    client_id: ClientId,
    max_change_pct: Annotated[
        float | None,
        Field(
            gt=0,
            le=50,
            description="Largest price change to consider, in percent; omit for the default.",
        ),
    ] = None,
    keep_churn_risk: Annotated[
        bool,
        Field(description="True when the client's churn risk must not rise (the default)."),
    ] = True,
) -> tuple[str, dict]:
    """Recommend a monthly price change for one client.

    Picks the price within +-max_change_pct that maximises expected revenue = price x
    (1 - churn probability at that price) and reports the expected revenue change and the
    churn-risk change.
    """
    result = scoring.price_recommendation(
        runtime.context.book,
        client_id,
        runtime.context.price_change_limit if max_change_pct is None else max_change_pct / 100,
        0.0 if keep_churn_risk else None,
    )
    return result.render(), result.model_dump(mode="json")


@tool("price_change_impact", response_format="content_and_artifact")
def price_change_impact_tool(
    runtime: ToolRuntime[Context],
    change_pct: Annotated[
        float,
        Field(
            ge=-MAX_PRICE_CHANGE_PCT,
            le=MAX_PRICE_CHANGE_PCT,
            description="The price change, percent (-10 = 10% cheaper).",
        ),
    ],
    filters: Segment | None = None,
) -> tuple[str, dict]:
    """Estimate what a price change of a segment (or of every client) does.

    Gives expected monthly revenue and churners before and after changing monthly prices by
    change_pct, by the churn model's response to price.
    """
    book = runtime.context.book
    result = scoring.price_change_impact(book, parse_filters(filters or []), change_pct)
    return result.render(), result.model_dump(mode="json")
