"""Scores of a client book: the one code path of the agents' tools and the scoring API.

Every function reads a :class:`~aimesh.portfolio.book.ClientBook` (its table and its
models) and returns a result of :mod:`aimesh.portfolio.results` stamped with the book
version and the model version. The whole book's churn probabilities, churn ranks and
billing scores are computed once per book (``book.cached``), so one client's answer only
explains that client's row.

Errors: :class:`~aimesh.errors.ModelUnavailableError` (the book has no such model) and
:class:`~aimesh.errors.UnknownClientError` come from the book; bad arguments raise
:class:`~aimesh.errors.InvalidInputError` naming the argument.
"""

from typing import Any, cast

import numpy as np
import pandas as pd

from aimesh.config import Settings
from aimesh.errors import InvalidInputError
from aimesh.ml.anomaly import rank_billing_anomalies, score_billing
from aimesh.ml.churn import ChurnModel
from aimesh.ml.paging import check_page
from aimesh.ml.pricing import recommend_price
from aimesh.ml.registry import Trained
from aimesh.portfolio.book import ClientBook
from aimesh.portfolio.filters import Filters, apply_filters, check_filters
from aimesh.portfolio.results import (
    BillingAnomalies,
    BookResult,
    ChurnDriver,
    ChurnRisks,
    ChurnSummary,
    ClientBilling,
    ClientChurn,
    ClientRisk,
    PriceAdvice,
    PriceChangeImpact,
)
from aimesh.portfolio.training import PRICE
from aimesh.portfolio.wording import TOP_SHARE, ChurnScale

CHURN_METHOD = "calibrated LightGBM churn probability; drivers are SHAP values (pred_contrib)"
BILLING_METHOD = "IsolationForest anomaly score on billing features; reasons are robust z-scores"
PRICE_METHOD = "grid search of price x (1 - churn probability) with the churn model"
IMPACT_METHOD = "sum of price x (1 - churn probability), churn re-scored at the new prices"

MAX_PRICE_CHANGE_PCT = 50.0
"""Largest price change :func:`price_change_impact` evaluates, percent either way."""

CHURNED = "churned"
"""The book's past outcome column (1.0 churned, 0.0 stayed, NaN unknown)."""

NOT_CHURNED = "not churned"
"""How results report the clients kept by default: those not known to have churned."""

DRIVERS = 3
"""Drivers explained per client."""


def churn_scores(book: ClientBook) -> pd.Series:
    """Churn probability of every client of the book, index ``client_id`` (cached).

    Raises:
        ModelUnavailableError: The book has no churn model.
    """

    def score() -> pd.Series:
        frame = book.frame()
        probability = book.churn().model.predict_proba(frame)
        return pd.Series(probability, index=frame.index, name="churn_probability")

    return book.cached("scores:churn", score)


def billing_scores(book: ClientBook) -> pd.DataFrame:
    """Billing features and anomaly ``score`` of every client of the book (cached).

    Raises:
        ModelUnavailableError: The book has no billing-anomaly detector.
    """
    return book.cached("scores:billing", lambda: score_billing(book.anomaly().model, book.frame()))


def churn_scale(book: ClientBook) -> ChurnScale:
    """The median and top-decile churn probability of the book's current clients (cached).

    Over the clients not known to have churned (those :func:`churn_risks` ranks; all of
    them when the book has no ``churned`` column), from :func:`churn_scores`.

    Raises:
        ModelUnavailableError: The book has no churn model.
    """

    def scale() -> ChurnScale:
        frame = book.frame()
        scores = churn_scores(book)
        if CHURNED in frame.columns:
            scores = scores[frame[CHURNED] != 1]
        return ChurnScale(
            clients=len(scores),
            median=float(scores.median()),
            top_decile=float(scores.quantile(1 - TOP_SHARE)),
        )

    return book.cached("scale:churn", scale)


def churn_risks(
    book: ClientBook, filters: Filters | None = None, limit: int = 10, offset: int = 0
) -> ChurnRisks:
    """A page of the segment's clients ranked by churn probability, highest first.

    Args:
        book: The client book.
        filters: The segment (see :mod:`aimesh.portfolio.filters`); None for the book.
        limit: Clients to return, 1 to 500.
        offset: Clients of the segment's ranking to skip.

    Returns:
        Ranks within the segment, ``offset + 1`` onwards; equal probabilities keep the
        book's order.

    Raises:
        InvalidInputError: Bad filters, ``limit`` or ``offset``.
        ModelUnavailableError: The book has no churn model.
    """
    check_page(limit, offset)
    checked, mask = _segment(book, filters, current=True)
    trained = book.churn()
    members = np.flatnonzero(mask.to_numpy())
    scores = churn_scores(book).to_numpy()[members]
    page = members[np.argsort(-scores, kind="stable")[offset : offset + limit]]
    return ChurnRisks(
        **BookResult.stamp(trained, CHURN_METHOD, book.info),
        filters=checked,
        matched=len(members),
        book_size=len(book.frame()),
        offset=offset,
        clients=_client_risks(
            book, trained, page.tolist(), list(range(offset + 1, offset + len(page) + 1))
        ),
        churn_scale=churn_scale(book),
    )


def client_churn(book: ClientBook, client_id: str) -> ClientChurn:
    """One client's churn probability, drivers and rank in the book (see :func:`_churn_ranks`).

    Uses the book's cached scores and ranks; only this client's row is explained.

    Raises:
        UnknownClientError: The id is not in the book.
        ModelUnavailableError: The book has no churn model.
    """
    position = cast(int, book.frame().index.get_loc(book.lookup(client_id)))  # ids are unique
    trained = book.churn()
    rank = int(_churn_ranks(book)[position])
    return ClientChurn(
        **BookResult.stamp(trained, CHURN_METHOD, book.info),
        client=_client_risks(book, trained, [position], [rank])[0],
        book_size=len(book.frame()),
        churn_scale=churn_scale(book),
    )


def churn_summary(
    book: ClientBook, filters: Filters | None = None, threshold: float = 0.5
) -> ChurnSummary:
    """The segment's expected churners, share at risk and monthly revenue at risk.

    Args:
        book: The client book.
        filters: The segment; None for the book.
        threshold: Churn probability above which a client counts as at risk, in (0, 1).

    Returns:
        Sums over the segment of the model's churn probabilities (see
        :class:`~aimesh.portfolio.results.ChurnSummary`).

    Raises:
        InvalidInputError: Bad filters or threshold.
        ModelUnavailableError: The book has no churn model.
    """
    if not 0 < threshold < 1:
        raise InvalidInputError("threshold", f"{threshold} is outside (0, 1)", "e.g. 0.5")
    checked, mask = _segment(book, filters, current=True)
    trained = book.churn()
    frame = book.frame()
    probability = churn_scores(book)[mask]
    at_risk = None
    if PRICE in frame.columns:
        at_risk = float((frame.loc[mask, PRICE] * probability).sum())
    return ChurnSummary(
        **BookResult.stamp(trained, CHURN_METHOD, book.info),
        filters=checked,
        matched=len(probability),
        book_size=len(frame),
        expected_churners=float(probability.sum()),
        threshold=threshold,
        share_above_threshold=float((probability > threshold).mean()) if len(probability) else None,
        monthly_revenue_at_risk=at_risk,
    )


def billing_anomalies(
    book: ClientBook, filters: Filters | None = None, limit: int = 10, offset: int = 0
) -> BillingAnomalies:
    """A page of the segment's clients ranked by billing anomaly score, most anomalous first.

    Scores are the whole book's (the billing features compare each client with the book),
    ranked within the segment.

    Raises:
        InvalidInputError: Bad filters, ``limit`` or ``offset``.
        ModelUnavailableError: The book has no billing-anomaly detector.
    """
    check_page(limit, offset)
    checked, mask = _segment(book, filters)
    trained = book.anomaly()
    frame = book.frame()
    anomalies = rank_billing_anomalies(
        trained.model, frame[mask], limit, offset, scored=billing_scores(book)[mask]
    )
    return BillingAnomalies(
        **BookResult.stamp(trained, BILLING_METHOD, book.info),
        filters=checked,
        matched=int(mask.sum()),
        book_size=len(frame),
        offset=offset,
        anomalies=anomalies,
    )


def client_billing(book: ClientBook, client_id: str) -> ClientBilling:
    """One client's billing anomaly score, rank in the whole book and what is out of line.

    The rank counts clients with a higher score first, equal scores in the book's order
    (as :func:`billing_anomalies` ranks them).

    Raises:
        UnknownClientError: The id is not in the book.
        ModelUnavailableError: The book has no billing-anomaly detector.
    """
    position = cast(int, book.frame().index.get_loc(book.lookup(client_id)))  # ids are unique
    trained = book.anomaly()
    scored = billing_scores(book)
    scores = scored["score"].to_numpy()
    ahead = int((scores > scores[position]).sum() + (scores[:position] == scores[position]).sum())
    anomaly = rank_billing_anomalies(trained.model, book.frame(), 1, ahead, scored=scored)[0]
    return ClientBilling(
        **BookResult.stamp(trained, BILLING_METHOD, book.info),
        anomaly=anomaly,
        book_size=len(scores),
    )


def price_recommendation(
    book: ClientBook,
    client_id: str,
    max_change: float = Settings.model_fields["price_change_limit"].default,
    max_churn_increase: float | None = 0.0,
) -> PriceAdvice:
    """The client's monthly price that maximises expected revenue under the churn model.

    See :func:`~aimesh.ml.pricing.recommend_price` (31 prices within ``+-max_change``).

    Args:
        book: The client book.
        client_id: The client.
        max_change: Bound of the move, a fraction in (0, 0.5].
        max_churn_increase: Largest allowed rise of the churn probability (0.0: none),
            None for no cap.

    Raises:
        UnknownClientError: The id is not in the book.
        InvalidInputError: The book has no ``monthly_charges``, the client no positive
            price, or an argument is out of range.
        ModelUnavailableError: The book has no churn model.
    """
    client = book.lookup(client_id)
    frame = book.frame()
    _require_price(frame)
    trained = book.churn()
    recommendation = recommend_price(
        trained.model,
        frame.loc[[client]],
        price_column=PRICE,
        max_change=max_change,
        max_churn_increase=max_churn_increase,
    )
    return PriceAdvice(
        **BookResult.stamp(trained, PRICE_METHOD, book.info), recommendation=recommendation
    )


def price_change_impact(
    book: ClientBook, filters: Filters | None, change_pct: float
) -> PriceChangeImpact:
    """Expected monthly revenue and churners of a segment before and after a price change.

    See :class:`~aimesh.portfolio.results.PriceChangeImpact` for the formulas.

    Args:
        book: The client book.
        filters: The segment; None for the book.
        change_pct: Price change in percent, -50 to 50.

    Raises:
        InvalidInputError: Bad filters, ``change_pct`` out of range, or a book without
            ``monthly_charges``.
        ModelUnavailableError: The book has no churn model.
    """
    if not -MAX_PRICE_CHANGE_PCT <= change_pct <= MAX_PRICE_CHANGE_PCT:
        raise InvalidInputError(
            "change_pct",
            f"{change_pct} is out of range",
            f"-{MAX_PRICE_CHANGE_PCT:g} to {MAX_PRICE_CHANGE_PCT:g} (percent)",
        )
    checked, mask = _segment(book, filters, current=True)
    frame = book.frame()
    _require_price(frame)
    trained = book.churn()
    rows = frame[mask]
    before = churn_scores(book)[mask].to_numpy()
    prices = rows[PRICE].to_numpy(dtype=float)
    new_prices = np.round(prices * (1 + change_pct / 100), 2)
    after = trained.model.predict_proba(rows.assign(**{PRICE: new_prices})) if len(rows) else before
    revenue_before = float(np.nansum(prices * (1 - before)))
    revenue_after = float(np.nansum(new_prices * (1 - after)))
    change = revenue_after - revenue_before
    return PriceChangeImpact(
        **BookResult.stamp(trained, IMPACT_METHOD, book.info),
        filters=checked,
        matched=len(rows),
        book_size=len(frame),
        change_pct=change_pct,
        priced=int(np.isfinite(prices).sum()),
        revenue_before=revenue_before,
        revenue_after=revenue_after,
        revenue_change=change,
        revenue_change_pct=100 * change / revenue_before if revenue_before else None,
        churners_before=float(before.sum()),
        churners_after=float(np.sum(after)),
    )


def _segment(
    book: ClientBook, filters: Filters | None, *, current: bool = False
) -> tuple[Filters, pd.Series]:
    """The checked filters (as results report them) and the mask of the segment's clients.

    Args:
        book: The client book.
        filters: The segment.
        current: Keep only clients that have not churned (``churned`` is not 1) unless the
            filters name ``churned``: a client already lost has no churn risk left, and its
            in-sample probability would top every ranking. Reported as a filter
            ``churned: "not churned"``.

    Raises:
        InvalidInputError: The filters do not fit the book's schema.
    """
    conditions = check_filters(filters, book.info)
    checked: Filters = {c.column: c.value for c in conditions}
    mask = apply_filters(book.frame(), conditions)
    if current and CHURNED in book.frame().columns and CHURNED not in checked:
        checked[CHURNED] = NOT_CHURNED
        mask &= book.frame()[CHURNED] != 1
    return checked, mask


def _churn_ranks(book: ClientBook) -> np.ndarray:
    """Rank by churn probability of each client, by position (cached).

    Clients that have not churned come first (rank 1 = the likeliest of them to churn, as in
    :func:`churn_risks`), then those that have; ties keep the book's order.
    """

    def rank() -> np.ndarray:
        frame = book.frame()
        lost = (
            (frame[CHURNED] == 1).to_numpy() if CHURNED in frame.columns else np.zeros(len(frame))
        )
        order = np.lexsort((-churn_scores(book).to_numpy(), lost))
        ranks = np.empty(len(order), dtype=int)
        ranks[order] = np.arange(1, len(order) + 1)
        return ranks

    return book.cached("ranks:churn", rank)


def _churn_inputs(book: ClientBook, trained: Trained[ChurnModel]) -> pd.DataFrame:
    """The book's table cut to the churn model's features, in its order (cached)."""
    return book.cached("inputs:churn", lambda: book.frame()[trained.model.features])


def _feature_medians(book: ClientBook, trained: Trained[ChurnModel]) -> dict[str, float]:
    """The book's median of each numeric feature of the churn model (cached)."""

    def medians() -> dict[str, float]:
        numbers = _churn_inputs(book, trained).select_dtypes("number")
        return {str(name): float(v) for name, v in numbers.median().items() if pd.notna(v)}

    return book.cached("medians:churn", medians)


def _client_risks(
    book: ClientBook, trained: Trained[ChurnModel], positions: list[int], ranks: list[int]
) -> list[ClientRisk]:
    """The clients at these positions of the book; only their rows are explained."""
    frame = book.frame()
    inputs = _churn_inputs(book, trained).iloc[positions]
    drivers = trained.model.explain(inputs, top_k=DRIVERS) if positions else []
    probability = churn_scores(book).to_numpy()[positions]
    names = _values(frame, "name", positions)
    prices = _values(frame, PRICE, positions)
    tenures = _values(frame, "tenure_months", positions)
    medians = _feature_medians(book, trained)
    scale = churn_scale(book)
    return [
        ClientRisk(
            rank=ranks[i],
            client_id=str(frame.index[position]),
            name=None if names[i] is None else str(names[i]),
            churn_probability=float(probability[i]),
            churn_level=scale.level(float(probability[i])),
            monthly_charges=None if prices[i] is None else float(prices[i]),
            tenure_months=None if tenures[i] is None else float(tenures[i]),
            drivers=[
                ChurnDriver.of(d, medians.get(d.feature)) for d in drivers[i] if d.contribution
            ],
        )
        for i, position in enumerate(positions)
    ]


def _values(frame: pd.DataFrame, name: str, positions: list[int]) -> list[Any]:
    """A column's values at these positions: None where missing or without the column.

    Takes from the column's array: ``.iloc`` costs 0.1 ms more a column on a book of
    100,000 rows, ``.to_numpy()`` copies a whole text column.
    """
    if name not in frame.columns:
        return [None] * len(positions)
    return [
        None if pd.isna(value) else value
        for value in frame[name].array.take(np.asarray(positions, dtype=int))
    ]


def _require_price(frame: pd.DataFrame) -> None:
    if PRICE not in frame.columns:
        raise InvalidInputError(
            PRICE,
            "this client book has no monthly_charges column",
            "a client book that maps monthly_charges (import with --map monthly_charges=COLUMN)",
        )
