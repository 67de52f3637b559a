"""Every ML tool an agent may be given, by name (custom agents pick a subset)."""

from langchain_core.tools import BaseTool

from aimesh.tools.billing import billing_anomalies, client_billing_check
from aimesh.tools.churn import churn_summary_tool, client_churn_risk, top_churn_risks
from aimesh.tools.pricing import price_change_impact_tool, recommend_price_tool

TOOLS: dict[str, BaseTool] = {
    t.name: t
    for t in (
        top_churn_risks,
        client_churn_risk,
        churn_summary_tool,
        billing_anomalies,
        client_billing_check,
        recommend_price_tool,
        price_change_impact_tool,
    )
}
