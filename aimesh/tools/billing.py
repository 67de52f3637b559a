"""Billing tool: clients billed out of line with their services, tenure or peers."""

from typing import Annotated

from langchain.tools import ToolRuntime
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from aimesh.context import Context
from aimesh.ml.anomaly import BillingAnomaly
from aimesh.portfolio.results import render_anomaly
from aimesh.tools.results import Provenance

METHOD = "IsolationForest anomaly score on billing features; reasons are robust z-scores"


class BillingAnomalies(BaseModel):
    """A slice of the portfolio ranked by billing anomaly score, most anomalous first."""

    anomalies: list[BillingAnomaly]
    offset: int
    portfolio_size: int
    provenance: Provenance

    def render(self) -> str:
        """Text the model reads: ranked anomalies and the source."""
        first, last = self.offset + 1, self.offset + len(self.anomalies)
        head = f"Clients ranked {first}-{last} of {self.portfolio_size} by billing anomaly score:"
        return "\n".join([head, *map(render_anomaly, self.anomalies), self.provenance.render()])


@tool(response_format="content_and_artifact")
def billing_anomalies(
    runtime: ToolRuntime[Context],
    limit: Annotated[int, Field(ge=1, le=25, description="How many clients to list.")] = 5,
    offset: Annotated[
        int, Field(ge=0, le=7000, description="How many top-ranked clients to skip.")
    ] = 0,
) -> tuple[str, dict]:
    """List clients whose billing is most out of line, most anomalous first.

    Out of line means charges that do not fit the client's services, its tenure (total billed
    vs monthly x months) or similar clients: possible revenue leaks or billing errors.
    """
    ml = runtime.context.ml
    result = BillingAnomalies(
        anomalies=ml.billing_anomalies(limit=limit, offset=offset),
        offset=offset,
        portfolio_size=len(ml.portfolio()),
        provenance=Provenance.of(ml.anomaly(), METHOD),
    )
    return result.render(), result.model_dump(mode="json")
