"""Churn tools: the portfolio's churn-risk ranking and one client's churn risk with reasons."""

from typing import Annotated

import pandas as pd
from langchain.tools import ToolRuntime
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from aimesh.context import Context
from aimesh.ml.churn import Driver
from aimesh.ml.portfolio import lookup_client
from aimesh.ml.service import MLService
from aimesh.portfolio.results import pct, usd
from aimesh.tools.results import Provenance

METHOD = "calibrated LightGBM churn probability; drivers are SHAP values (pred_contrib)"
ClientId = Annotated[
    str,
    Field(pattern=r"^[Cc][0-9]{5}$", description="Client id: 'C' and five digits, e.g. C01234."),
]


class ChurnRisk(BaseModel):
    """One client's churn risk.

    Attributes:
        rank: Position in the portfolio ranking (1 = most likely to churn).
        client_id: Portfolio id.
        churn_probability: Calibrated probability of churn, 0-1.
        contract: Contract type.
        tenure_months: Months as a client.
        monthly_charges_usd: Current monthly bill, USD.
        drivers: Features pushing this client's risk up or down most (SHAP, log-odds).
    """

    rank: int
    client_id: str
    churn_probability: float
    contract: str
    tenure_months: int
    monthly_charges_usd: float
    drivers: list[Driver]

    def render(self) -> str:
        """One line for the LLM: the figures and the reasons."""
        reasons = ", ".join(
            f"{d.feature}={d.value} ({'raises' if d.contribution > 0 else 'lowers'} risk)"
            for d in self.drivers
        )
        return (
            f"#{self.rank} {self.client_id}: churn probability {pct(self.churn_probability)}; "
            f"{self.contract} contract, tenure {self.tenure_months} months, "
            f"{usd(self.monthly_charges_usd)}/month; top drivers: {reasons}."
        )


class ChurnRanking(BaseModel):
    """A slice of the portfolio ranked by churn probability, highest first."""

    clients: list[ChurnRisk]
    offset: int
    portfolio_size: int
    provenance: Provenance

    def render(self) -> str:
        """Text the model reads: the ranked clients and the source."""
        first, last = self.offset + 1, self.offset + len(self.clients)
        head = f"Clients ranked {first}-{last} of {self.portfolio_size} by churn probability:"
        lines = [head, *(c.render() for c in self.clients), self.provenance.render()]
        return "\n".join(lines)


def _risks(ml: MLService, client_ids: list[str], ranks: list[int]) -> list[ChurnRisk]:
    trained = ml.churn()
    rows = ml.portfolio().loc[client_ids]
    features = rows[trained.model.features]
    drivers = trained.model.explain(features, top_k=3)
    probability = ml.churn_scores().loc[client_ids]
    return [
        ChurnRisk(
            rank=rank,
            client_id=cid,
            churn_probability=float(probability[cid]),
            contract=str(row["contract"]),
            tenure_months=int(row["tenure"]),
            monthly_charges_usd=float(row["monthly_charges"]),
            drivers=driver_list,
        )
        for cid, rank, (_, row), driver_list in zip(
            client_ids, ranks, rows.iterrows(), drivers, strict=True
        )
    ]


def _ranking(scores: pd.Series) -> pd.Series:
    """Rank (1 = highest probability) of every client; ties keep portfolio order."""
    order = scores.sort_values(ascending=False, kind="stable")
    return pd.Series(range(1, len(order) + 1), index=order.index)


@tool(response_format="content_and_artifact")
def top_churn_risks(
    runtime: ToolRuntime[Context],
    limit: Annotated[int, Field(ge=1, le=25, description="How many clients to list.")] = 5,
    offset: Annotated[
        int,
        Field(ge=0, le=7000, description="How many top-ranked clients to skip; 5 = the next five."),
    ] = 0,
) -> tuple[str, dict]:
    """List the clients most likely to churn, highest churn probability first, with reasons.

    Use for "which clients are most likely to churn", "top N at-risk clients" and follow-ups
    like "the five after those" (offset=5, limit=5).
    """
    ml = runtime.context.ml
    ranks = _ranking(ml.churn_scores())
    chosen = ranks.iloc[offset : offset + limit]
    result = ChurnRanking(
        clients=_risks(ml, list(chosen.index), list(chosen.values)),
        offset=offset,
        portfolio_size=len(ranks),
        provenance=Provenance.of(ml.churn(), METHOD),
    )
    return result.render(), result.model_dump(mode="json")


class ClientChurn(BaseModel):
    """One client's churn risk, with its rank in the portfolio."""

    client: ChurnRisk
    portfolio_size: int
    provenance: Provenance

    def render(self) -> str:
        """Text the model reads."""
        return f"{self.client.render()} (rank of {self.portfolio_size})\n{self.provenance.render()}"


@tool(response_format="content_and_artifact")
def client_churn_risk(runtime: ToolRuntime[Context], client_id: ClientId) -> tuple[str, dict]:
    """Give one client's churn probability, its rank in the portfolio and what drives it."""
    ml = runtime.context.ml
    cid = lookup_client(ml.portfolio(), client_id)
    ranks = _ranking(ml.churn_scores())
    result = ClientChurn(
        client=_risks(ml, [cid], [int(ranks[cid])])[0],
        portfolio_size=len(ranks),
        provenance=Provenance.of(ml.churn(), METHOD),
    )
    return result.render(), result.model_dump(mode="json")
