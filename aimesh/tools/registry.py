"""Every ML tool an agent may be given, by name (custom agents pick a subset)."""

from langchain_core.tools import BaseTool

from aimesh.tools.billing import billing_anomalies
from aimesh.tools.churn import client_churn_risk, top_churn_risks
from aimesh.tools.pricing import recommend_price_tool

TOOLS: dict[str, BaseTool] = {
    t.name: t for t in (top_churn_risks, client_churn_risk, billing_anomalies, recommend_price_tool)
}
