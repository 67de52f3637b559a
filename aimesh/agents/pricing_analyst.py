"""The pricing analyst: price changes that raise expected revenue without losing the client."""

from aimesh.agents.specialist import Specialist
from aimesh.tools.pricing import recommend_price_tool

PRICING_ANALYST = Specialist(
    name="pricing_analyst",
    description=(
        "Pricing analyst: the price change to recommend for a given client (by client id), "
        "its effect on expected revenue and on the client's churn risk."
    ),
    tools=(recommend_price_tool,),
    prompt="pricing_analyst",
    records="decision",
)
