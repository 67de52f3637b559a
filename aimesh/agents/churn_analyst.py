"""The churn analyst: which clients are likely to leave, and why."""

from aimesh.agents.specialist import Specialist
from aimesh.tools.churn import client_churn_risk, top_churn_risks

CHURN_ANALYST = Specialist(
    name="churn_analyst",
    description=(
        "Churn analyst: which clients are most likely to churn (leave), each client's churn "
        "probability and the reasons behind it, rankings and follow-ups such as the next clients."
    ),
    tools=(top_churn_risks, client_churn_risk),
    prompt="churn_analyst",
)
