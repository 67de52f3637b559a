"""The churn analyst: which clients are likely to leave, and why."""

from aimesh.agents.specialist import Specialist
from aimesh.tools.churn import churn_summary_tool, client_churn_risk, top_churn_risks

CHURN_ANALYST = Specialist(
    name="churn_analyst",
    description=(
        "Churn analyst: which clients are most likely to churn (leave), each client's churn "
        "probability and the reasons behind it, rankings and follow-ups such as the next "
        "clients; for a group of clients the question names, its expected churners and "
        "monthly revenue at risk."
    ),
    tools=(top_churn_risks, client_churn_risk, churn_summary_tool),
    prompt="churn_analyst",
)
