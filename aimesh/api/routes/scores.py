"""The scoring API for integrations: the tenant's book's figures with no LLM.

Churn risks, segment outlooks, billing anomalies, price recommendations and price change
impacts of the caller's tenant's current book.

Each route calls the function of :mod:`aimesh.portfolio.scoring` that the agents' tool of
the same name calls, so an integration and an answer see the same figures, each stamped with
the book version, ``sample`` and the model version. Scoring runs in a worker thread: a
book's first request loads (or, for the sample, trains) its models.
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from aimesh.api.deps import BookDep, ClientIdPath, Offset, ServicesDep, Writer
from aimesh.api.errors import conflict, error_response
from aimesh.api.schemas import FilterQuery, PriceRecommendationCreate
from aimesh.portfolio import scoring
from aimesh.portfolio.filters import parse_filters
from aimesh.portfolio.results import (
    BillingAnomalies,
    ChurnRisks,
    ChurnSummary,
    ClientChurn,
    PriceAdvice,
    PriceChangeImpact,
)
from aimesh.portfolio.scoring import MAX_PRICE_CHANGE_PCT

router = APIRouter(
    prefix="/portfolio",
    tags=["scores"],
    responses={
        404: error_response("No such client in the book, or no book (the sample turned off)."),
        **conflict("The book has no such model (no churn outcomes, no monthly_charges)."),
    },
)
Limit = Annotated[int, Query(ge=1, le=500, description="Clients per page.")]


@router.get("/churn-risks")
async def churn_risks(
    book: BookDep,
    filter_: FilterQuery = [],  # noqa: B006 (FastAPI copies the default)
    limit: Limit = 10,
    offset: Offset = 0,
) -> ChurnRisks:
    """The clients (of a segment) most likely to churn, highest probability first.

    Each with its drivers: SHAP values in calibrated log-odds.
    """
    filters = parse_filters(filter_)
    return await asyncio.to_thread(scoring.churn_risks, book, filters, limit, offset)


@router.get("/clients/{client_id}/churn")
async def client_churn(client_id: ClientIdPath, book: BookDep) -> ClientChurn:
    """One client's churn probability, its rank in the book and its drivers."""
    return await asyncio.to_thread(scoring.client_churn, book, client_id)


@router.get("/churn-summary")
async def churn_summary(
    book: BookDep,
    filter_: FilterQuery = [],  # noqa: B006 (FastAPI copies the default)
    threshold: Annotated[
        float, Query(gt=0, lt=1, description="Churn probability counted as at risk.")
    ] = 0.5,
) -> ChurnSummary:
    """A segment's churn outlook: expected churners, share at risk, revenue at risk.

    Revenue at risk is the sum of monthly charges x churn probability (USD per month).
    """
    filters = parse_filters(filter_)
    return await asyncio.to_thread(scoring.churn_summary, book, filters, threshold)


@router.get("/billing-anomalies")
async def billing_anomalies(
    book: BookDep,
    filter_: FilterQuery = [],  # noqa: B006 (FastAPI copies the default)
    limit: Limit = 10,
    offset: Offset = 0,
) -> BillingAnomalies:
    """The clients (of a segment) billed most out of line, most anomalous first.

    Out of line with what the book records of them; each with the features out of line.
    """
    filters = parse_filters(filter_)
    return await asyncio.to_thread(scoring.billing_anomalies, book, filters, limit, offset)


@router.post("/clients/{client_id}/price-recommendation")
async def price_recommendation(
    client_id: ClientIdPath,
    body: PriceRecommendationCreate,
    book: BookDep,
    caller: Writer,
    services: ServicesDep,
) -> PriceAdvice:
    """The monthly price that maximises the client's expected revenue.

    Searched within +-``max_change_pct`` (default ``AIMESH_PRICE_CHANGE_LIMIT``); expected
    revenue is price x (1 - churn probability) by the book's churn model.
    """
    limit = services.settings.price_change_limit
    return await asyncio.to_thread(
        scoring.price_recommendation,
        book,
        client_id,
        limit if body.max_change_pct is None else body.max_change_pct / 100,
        0.0 if body.keep_churn_risk else None,
    )


@router.get("/price-change-impact")
async def price_change_impact(
    book: BookDep,
    change_pct: Annotated[
        float,
        Query(
            ge=-MAX_PRICE_CHANGE_PCT,
            le=MAX_PRICE_CHANGE_PCT,
            description="Price change of every client, percent.",
        ),
    ],
    filter_: FilterQuery = [],  # noqa: B006 (FastAPI copies the default)
) -> PriceChangeImpact:
    """A segment's expected revenue and churners before and after a price change.

    Revenue in USD per month; churn re-scored by the book's model at the new prices.
    """
    filters = parse_filters(filter_)
    return await asyncio.to_thread(scoring.price_change_impact, book, filters, change_pct)
