"""Pricing: market price elasticity (Dominick's orange juice) and client price moves.

:func:`estimate_elasticity` measures how demand responds to price on real scanner data;
:func:`recommend_price` searches a client's price that maximises expected revenue under
the churn model.
"""

from typing import Protocol

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from pydantic import BaseModel

from aimesh.errors import DataFileError, InvalidInputError
from aimesh.ml.tabular import require_columns

MAX_STEPS = 1001
"""Largest price grid :func:`recommend_price` accepts."""


class Elasticity(BaseModel):
    """Own-price elasticity of demand for one brand.

    Attributes:
        brand: Brand number (1-11 in Dominick's orange juice).
        elasticity: % change in units sold per 1% price change (negative = demand falls).
        ci_low: Lower bound of the 95% confidence interval.
        ci_high: Upper bound of the 95% confidence interval.
        std_error: Standard error of the elasticity (cluster-robust by store).
        n_obs: Store-weeks used.
        n_stores: Stores (fixed effects and clusters).
        method: How it was estimated.
    """

    brand: int
    elasticity: float
    ci_low: float
    ci_high: float
    std_error: float
    n_obs: int
    n_stores: int
    method: str


class ChurnPredictor(Protocol):
    """What :func:`recommend_price` needs from a churn model (e.g. ``ChurnModel``)."""

    features: list[str]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Churn probability of each row, shape (n_rows,)."""
        ...


class PriceRecommendation(BaseModel):
    """The revenue-maximising monthly price of a client within a bound.

    Prices and revenues are USD per month; ``*_pct`` are percent; churn probabilities and
    ``churn_risk_change`` are probabilities (0.01 = 1 percentage point).

    Attributes:
        client_id: The client, when the row is indexed by ``client_id``.
        current_price: Price now.
        recommended_price: Best price on the grid (the current one if nothing beats it).
        change_pct: ``100 * (recommended / current - 1)``.
        churn_probability_now: Model churn probability at the current price.
        churn_probability_at_recommended: Same at the recommended price.
        churn_risk_change: ``churn_probability_at_recommended - churn_probability_now``.
        expected_revenue_now: ``current_price * (1 - churn_probability_now)``.
        expected_revenue_at_recommended: Same at the recommended price.
        expected_revenue_change: Difference of the two expected revenues.
        expected_revenue_change_pct: That difference in percent of the current one.
        retention_elasticity: % change of the retention probability (1 - churn) per 1%
            price change, arc elasticity between the grid's ends of the model's curve.
        max_change: Bound of the search, as a fraction of the current price (+-).
        max_churn_increase: The churn-risk cap, if any.
        constraint: The cap in words.
        grid_size: Prices evaluated.
        price_low: Lowest price evaluated.
        price_high: Highest price evaluated.
    """

    client_id: str | None
    current_price: float
    recommended_price: float
    change_pct: float
    churn_probability_now: float
    churn_probability_at_recommended: float
    churn_risk_change: float
    expected_revenue_now: float
    expected_revenue_at_recommended: float
    expected_revenue_change: float
    expected_revenue_change_pct: float
    retention_elasticity: float
    max_change: float
    max_churn_increase: float | None
    constraint: str
    grid_size: int
    price_low: float
    price_high: float


def estimate_elasticity(oj: pd.DataFrame, brand: int) -> Elasticity:
    """Own-price elasticity of one orange-juice brand.

    Log-log OLS with store fixed effects, controlling for promotions::

        logmove = a_store + elasticity * log(price<brand>) + b * deal + c * feat + e

    on the brand's store-weeks, with standard errors clustered by store (the usual
    specification for this data set, e.g. Montgomery 1997; Taddy, "Business Data Science").

    Args:
        oj: Dominick's table: ``store``, ``brand``, ``logmove`` (log units sold),
            ``price1..price11`` (USD per unit), ``deal``, ``feat``.
        brand: Brand number present in ``oj``.

    Returns:
        The estimate with its 95% confidence interval.

    Raises:
        InvalidInputError: The brand is not in the data.
        DataFileError: A needed column is missing or a price is not positive.
    """
    brands = sorted(int(value) for value in oj["brand"].unique()) if "brand" in oj else []
    if brand not in brands:
        raise InvalidInputError("brand", f"{brand} is not in the data", f"one of {brands}")
    price = f"price{brand}"
    require_columns(oj, ["store", "logmove", "deal", "feat", price], "orange-juice table")
    rows = oj.loc[oj["brand"] == brand, ["store", "logmove", "deal", "feat", price]]
    if not (rows[price] > 0).all():
        raise DataFileError(price, "has prices that are not positive", "prices > 0 (USD)")
    rows = rows.assign(log_price=np.log(rows[price]))
    fit = smf.ols("logmove ~ log_price + deal + feat + C(store)", data=rows).fit(
        cov_type="cluster", cov_kwds={"groups": rows["store"].to_numpy()}
    )
    low, high = fit.conf_int(alpha=0.05).loc["log_price"]
    return Elasticity(
        brand=brand,
        elasticity=float(fit.params["log_price"]),
        ci_low=float(low),
        ci_high=float(high),
        std_error=float(fit.bse["log_price"]),
        n_obs=int(fit.nobs),
        n_stores=int(rows["store"].nunique()),
        method="log-log OLS, store fixed effects, deal+feat controls, cluster-robust SE by store",
    )


def recommend_price(
    model: ChurnPredictor,
    client: pd.DataFrame,
    price_column: str = "monthly_charges",
    max_change: float = 0.15,
    steps: int = 31,
    max_churn_increase: float | None = None,
) -> PriceRecommendation:
    """Search the client's monthly price that maximises expected monthly revenue.

    Evaluates ``steps`` prices evenly spaced within ``current * (1 +- max_change)``
    (rounded to cents) plus the current price. Only ``price_column`` changes;
    ``total_charges`` and every other column stay as they are, because they describe the
    client's past, which a new price does not rewrite. At each price ``p`` the model gives
    the churn probability ``c(p)`` and expected revenue is ``p * (1 - c(p))``. The best
    price among those whose churn risk rises by at most ``max_churn_increase`` (all, if
    None) wins; ties keep the current price.

    Args:
        model: Churn model with ``features`` and ``predict_proba``.
        client: One row with the model's features.
        price_column: The feature holding the monthly price (USD).
        max_change: Bound of the move, a fraction in (0, 0.5] (0.15 = +-15%).
        steps: Grid prices, 3 to :data:`MAX_STEPS`.
        max_churn_increase: Largest allowed rise of the churn probability (0.0 = never
            raise churn risk; 0.01 = at most 1 percentage point), or None for no cap.

    Returns:
        The recommendation.

    Raises:
        InvalidInputError: An argument is out of range, ``client`` is not one row or lacks
            a feature, the price column is not a model feature or the current price is not
            positive.
    """
    _check_arguments(model, client, price_column, max_change, steps, max_churn_increase)
    current = float(pd.to_numeric(client[price_column], errors="coerce").iloc[0])
    if not np.isfinite(current) or current <= 0:
        raise InvalidInputError(price_column, f"current price {current} is not positive", "> 0")
    changes = np.linspace(-max_change, max_change, steps)
    prices = np.concatenate([[current], np.round(current * (1 + changes), 2)])
    grid = client[model.features].iloc[np.zeros(len(prices), dtype=int)]
    churn = model.predict_proba(grid.assign(**{price_column: prices}))
    revenue = prices * (1 - churn)
    allowed = np.ones(len(prices), dtype=bool)
    if max_churn_increase is not None:
        allowed = churn - churn[0] <= max_churn_increase + 1e-12
    best = int(np.argmax(np.where(allowed, revenue, -np.inf)))
    return PriceRecommendation(
        client_id=str(client.index[0]) if client.index.name == "client_id" else None,
        current_price=current,
        recommended_price=float(prices[best]),
        change_pct=float(100 * (prices[best] / current - 1)),
        churn_probability_now=float(churn[0]),
        churn_probability_at_recommended=float(churn[best]),
        churn_risk_change=float(churn[best] - churn[0]),
        expected_revenue_now=float(revenue[0]),
        expected_revenue_at_recommended=float(revenue[best]),
        expected_revenue_change=float(revenue[best] - revenue[0]),
        expected_revenue_change_pct=float(100 * (revenue[best] / revenue[0] - 1)),
        retention_elasticity=_arc_elasticity(prices[1:], 1 - churn[1:]),
        max_change=max_change,
        max_churn_increase=max_churn_increase,
        constraint=_describe(max_churn_increase),
        grid_size=len(prices) - 1,
        price_low=float(prices[1]),
        price_high=float(prices[-1]),
    )


def _arc_elasticity(prices: np.ndarray, retention: np.ndarray) -> float:
    """Log-change of retention over log-change of price between the grid's two ends."""
    kept = np.clip(retention, 1e-12, None)
    return float(np.log(kept[-1] / kept[0]) / np.log(prices[-1] / prices[0]))


def _check_arguments(
    model: ChurnPredictor,
    client: pd.DataFrame,
    price_column: str,
    max_change: float,
    steps: int,
    max_churn_increase: float | None,
) -> None:
    if not 0 < max_change <= 0.5:
        raise InvalidInputError(
            "max_change", f"{max_change} is outside (0, 0.5]", "a fraction, e.g. 0.15 for +-15%"
        )
    if not 3 <= steps <= MAX_STEPS:
        raise InvalidInputError("steps", f"{steps} is out of range", f"3 to {MAX_STEPS}")
    if max_churn_increase is not None and not 0 <= max_churn_increase <= 1:
        raise InvalidInputError(
            "max_churn_increase",
            f"{max_churn_increase} is outside [0, 1]",
            "a probability rise, e.g. 0.0 (no rise) or 0.01 (1 percentage point), or None",
        )
    if len(client) != 1:
        raise InvalidInputError("client", f"{len(client)} rows given", "exactly one row")
    missing = [name for name in model.features if name not in client.columns]
    if missing:
        raise InvalidInputError("client", f"missing feature column(s) {missing}", "model features")
    if price_column not in model.features:
        raise InvalidInputError(
            "price_column", f"{price_column!r} is not a model feature", f"one of {model.features}"
        )


def _describe(max_churn_increase: float | None) -> str:
    if max_churn_increase is None:
        return "none: revenue maximised whatever the churn risk"
    return f"churn risk may rise by at most {100 * max_churn_increase:g} percentage points"
