"""Billing tool: clients billed out of line with what the book records of them.

It takes no segment filters, unlike the churn tools and the scoring API's
``GET /portfolio/billing-anomalies``: given a ``filters`` argument, the local 1.5B model
filled it on every billing question ("billing=billing") and failed them all.
"""

from langchain.tools import ToolRuntime
from langchain_core.tools import tool

from aimesh.context import Context
from aimesh.portfolio import scoring
from aimesh.tools.args import ClientId, Limit, Offset


@tool(response_format="content_and_artifact")
def billing_anomalies(
    runtime: ToolRuntime[Context], limit: Limit = 5, offset: Offset = 0
) -> tuple[str, dict]:
    """List clients whose billing is most out of line, most anomalous first.

    Out of line means charges that do not fit the client's services and usage, its tenure
    (total billed vs monthly x months) or similar clients: possible revenue leaks or billing
    errors.
    """
    result = scoring.billing_anomalies(runtime.context.book, None, limit, offset)
    return result.render(), result.model_dump(mode="json")


@tool(response_format="content_and_artifact")
def client_billing_check(runtime: ToolRuntime[Context], client_id: ClientId) -> tuple[str, dict]:
    """Check whether one client is billed correctly (in line) or out of line.

    Gives its anomaly score, its rank in the book and the billing features furthest from
    typical.
    """
    result = scoring.client_billing(runtime.context.book, client_id)
    return result.render(), result.model_dump(mode="json")
