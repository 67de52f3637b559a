"""The specialists the coordinator can delegate to, in the order it lists them."""

from aimesh.agents.billing_analyst import BILLING_ANALYST
from aimesh.agents.churn_analyst import CHURN_ANALYST
from aimesh.agents.pricing_analyst import PRICING_ANALYST
from aimesh.agents.specialist import Specialist

SPECIALISTS: tuple[Specialist, ...] = (CHURN_ANALYST, BILLING_ANALYST, PRICING_ANALYST)
