import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from aimesh.errors import InvalidInputError
from aimesh.ml.churn import ChurnModel
from aimesh.ml.pricing import estimate_elasticity, recommend_price


class CurveModel:
    """Churn = expit(slope * (price - pivot)); records every frame it scores."""

    features = ["monthly_charges", "total_charges", "tenure"]

    def __init__(self, slope: float, pivot: float = 60.0) -> None:
        self.slope = slope
        self.pivot = pivot
        self.seen: list[pd.DataFrame] = []

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self.seen.append(X.copy())
        return np.asarray(expit(self.slope * (X["monthly_charges"].to_numpy() - self.pivot)))


def client(price: float = 60.0) -> pd.DataFrame:
    return pd.DataFrame(
        {"monthly_charges": [price], "total_charges": [1200.0], "tenure": [20]},
        index=pd.Index(["C00042"], name="client_id"),
    )


def brute_force(model: CurveModel, price: float, max_change: float, steps: int) -> float:
    grid = np.round(price * (1 + np.linspace(-max_change, max_change, steps)), 2)
    revenue = grid * (1 - expit(model.slope * (grid - model.pivot)))
    return float(grid[revenue.argmax()])


@pytest.mark.parametrize("slope", [0.0, 0.02, 0.08, 0.3])
def test_maximises_expected_revenue_on_the_grid(slope: float) -> None:
    model = CurveModel(slope)

    result = recommend_price(model, client(), max_change=0.2, steps=41)

    assert result.recommended_price == brute_force(model, 60.0, 0.2, 41)
    assert result.expected_revenue_at_recommended >= result.expected_revenue_now
    assert result.expected_revenue_at_recommended == pytest.approx(
        result.recommended_price * (1 - result.churn_probability_at_recommended)
    )
    assert result.client_id == "C00042" and result.grid_size == 41


def test_stays_within_the_bound() -> None:
    result = recommend_price(CurveModel(0.0), client(80.0), max_change=0.1, steps=11)

    assert result.price_low == 72.0 and result.price_high == 88.0
    assert result.recommended_price == 88.0  # churn flat: the highest price wins
    assert result.change_pct == pytest.approx(10.0)


def test_churn_cap_is_respected() -> None:
    model = CurveModel(0.05, pivot=100.0)  # churn rises slowly from 12% at the current price
    free = recommend_price(model, client(), max_change=0.15)

    capped = recommend_price(model, client(), max_change=0.15, max_churn_increase=0.0)
    loose = recommend_price(model, client(), max_change=0.15, max_churn_increase=0.01)

    assert free.churn_risk_change > 0.01
    assert capped.churn_risk_change <= 0 and capped.recommended_price <= 60.0
    assert 0 < loose.churn_risk_change <= 0.01
    assert "at most 0 percentage points" in capped.constraint


def test_only_the_price_column_changes() -> None:
    model = CurveModel(0.05)

    recommend_price(model, client(), steps=5)

    grid = model.seen[-1]
    assert len(grid) == 6  # the current price plus 5 grid prices
    assert (grid["total_charges"] == 1200.0).all() and (grid["tenure"] == 20).all()
    assert grid["monthly_charges"].iloc[0] == 60.0


def test_ties_keep_the_current_price() -> None:
    model = CurveModel(0.0)
    model.predict_proba = lambda X: 1 - 60.0 / X["monthly_charges"].to_numpy() / 2  # type: ignore[method-assign]

    result = recommend_price(model, client(), steps=5)

    assert result.recommended_price == 60.0 and result.expected_revenue_change == 0.0


def test_retention_elasticity_matches_the_curve() -> None:
    result = recommend_price(CurveModel(0.05), client(), max_change=0.1, steps=3)

    retention = 1 - expit(0.05 * (np.array([54.0, 66.0]) - 60.0))
    expected = np.log(retention[1] / retention[0]) / np.log(66.0 / 54.0)
    assert result.retention_elasticity == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_change": 0.0}, "max_change"),
        ({"max_change": 0.6}, "max_change"),
        ({"steps": 2}, "steps"),
        ({"max_churn_increase": -0.1}, "max_churn_increase"),
        ({"price_column": "tenure_x"}, "price_column"),
    ],
)
def test_arguments_are_validated(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        recommend_price(CurveModel(0.05), client(), **kwargs)  # type: ignore[arg-type]

    assert caught.value.field == field


def test_client_must_be_one_row_with_a_positive_price() -> None:
    with pytest.raises(InvalidInputError, match="exactly one row"):
        recommend_price(CurveModel(0.05), pd.concat([client(), client()]))
    with pytest.raises(InvalidInputError, match="not positive"):
        recommend_price(CurveModel(0.05), client(0.0))
    with pytest.raises(InvalidInputError, match="missing feature"):
        recommend_price(CurveModel(0.05), client().drop(columns="tenure"))


def test_with_a_monotone_churn_model(churn_model: ChurnModel, churn_frame: pd.DataFrame) -> None:
    row = churn_frame.iloc[[3]]

    result = recommend_price(churn_model, row, max_change=0.15)

    current = float(row["monthly_charges"].iloc[0])
    assert current * 0.85 - 0.01 <= result.recommended_price <= current * 1.15 + 0.01
    if result.recommended_price > current:
        assert result.churn_risk_change >= 0
    assert result.client_id is None


def synthetic_oj(elasticity: float, seed: int = 0) -> pd.DataFrame:
    """Store-weeks of one brand: log sales = store effect + elasticity * log price + promos."""
    rng = np.random.default_rng(seed)
    stores = np.repeat(np.arange(1, 31), 60)
    price = np.exp(rng.normal(-3, 0.2, len(stores)))
    deal = rng.integers(0, 2, len(stores))
    feat = rng.random(len(stores))
    store_effect = rng.normal(9, 1, 31)[stores]
    logmove = (
        store_effect
        + elasticity * np.log(price)
        + 0.4 * deal
        + 0.3 * feat
        + rng.normal(0, 0.3, len(stores))
    )
    return pd.DataFrame(
        {
            "store": stores,
            "brand": 1,
            "logmove": logmove,
            "price1": price,
            "deal": deal,
            "feat": feat,
        }
    )


def test_estimate_elasticity_recovers_a_known_value() -> None:
    estimate = estimate_elasticity(synthetic_oj(-2.0), brand=1)

    assert estimate.elasticity == pytest.approx(-2.0, abs=0.1)
    assert estimate.ci_low < -2.0 < estimate.ci_high
    assert estimate.std_error > 0 and estimate.n_obs == 1800 and estimate.n_stores == 30


def test_estimate_elasticity_rejects_unknown_brands() -> None:
    with pytest.raises(InvalidInputError, match=r"one of \[1\]") as caught:
        estimate_elasticity(synthetic_oj(-2.0), brand=4)

    assert caught.value.field == "brand"
