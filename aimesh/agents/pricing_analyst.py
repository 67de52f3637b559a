"""The pricing analyst: price changes that raise expected revenue without losing the client."""

from aimesh.agents.specialist import Specialist
from aimesh.tools.pricing import price_change_impact_tool, recommend_price_tool

PRICING_ANALYST = Specialist(
    name="pricing_analyst",
    description=(
        "Pricing analyst: the price change to recommend for a given client (by client id), "
        "its effect on expected revenue and on the client's churn risk; what changing the "
        "prices of a segment (or of every client) by a percentage does to expected revenue."
    ),
    tools=(recommend_price_tool, price_change_impact_tool),
    prompt="pricing_analyst",
    records="decision",
)
