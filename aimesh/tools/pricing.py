"""Pricing tool: the monthly price that maximises a client's expected revenue."""

from typing import Annotated

from langchain.tools import ToolRuntime
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from aimesh.context import Context
from aimesh.ml.pricing import PriceRecommendation
from aimesh.portfolio.results import render_recommendation
from aimesh.tools.churn import ClientId
from aimesh.tools.results import Provenance

METHOD = "grid search of price x (1 - churn probability) with the churn model"


class PriceAdvice(BaseModel):
    """A price recommendation with its provenance."""

    recommendation: PriceRecommendation
    provenance: Provenance

    def render(self) -> str:
        """Text the model reads."""
        return f"{render_recommendation(self.recommendation)}\n{self.provenance.render()}"


@tool("recommend_price", response_format="content_and_artifact")
def recommend_price_tool(
    runtime: ToolRuntime[Context],
    client_id: ClientId,
    max_change_pct: Annotated[
        float | None,
        Field(
            gt=0,
            le=50,
            description="Largest price change to consider, in percent; omit for the default (15).",
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
    ml = runtime.context.ml
    recommendation = ml.recommend_price(
        client_id,
        max_change=None if max_change_pct is None else max_change_pct / 100,
        max_churn_increase=0.0 if keep_churn_risk else None,
    )
    result = PriceAdvice(
        recommendation=recommendation, provenance=Provenance.of(ml.churn(), METHOD)
    )
    return result.render(), result.model_dump(mode="json")
