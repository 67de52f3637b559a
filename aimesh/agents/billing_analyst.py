"""The billing analyst: clients billed out of line with their services (revenue leaks)."""

from aimesh.agents.specialist import Specialist
from aimesh.tools.billing import billing_anomalies, client_billing_check

BILLING_ANALYST = Specialist(
    name="billing_analyst",
    description=(
        "Billing-anomaly analyst: clients billed out of line with the services they have, "
        "how long they have been clients or similar clients; possible revenue leaks and "
        "billing errors; whether one client (by client id) is billed correctly."
    ),
    tools=(billing_anomalies, client_billing_check),
    prompt="billing_analyst",
)
