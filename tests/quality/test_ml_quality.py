"""Model-quality floors on the real datasets (data/README.md gives the reference figures)."""

import pandas as pd
import pytest

from aimesh.config import REPO_DATA_DIR
from aimesh.ml.anomaly import train_labelled_detector
from aimesh.ml.churn import train_churn
from aimesh.ml.portfolio import load_portfolio
from aimesh.ml.pricing import estimate_elasticity

pytestmark = pytest.mark.quality


def test_churn_cross_validated_roc_auc_on_telco() -> None:
    portfolio = load_portfolio(REPO_DATA_DIR / "telco_churn.csv")

    _, card = train_churn(
        portfolio, "churn", seed=42, folds=5, monotone_increasing=["monthly_charges"]
    )

    assert card.metrics["roc_auc"] >= 0.84
    assert card.metrics["brier"] < 0.15


def test_anomaly_detector_roc_auc_on_shuttle() -> None:
    shuttle = pd.read_csv(REPO_DATA_DIR / "shuttle_anomaly.csv.gz")

    _, card = train_labelled_detector(shuttle, "anomaly", seed=42, name="shuttle-anomaly")

    assert card.metrics["roc_auc"] >= 0.99


@pytest.fixture(scope="module")
def oj() -> pd.DataFrame:
    return pd.read_csv(REPO_DATA_DIR / "dominicks_oj.csv.gz")


@pytest.mark.parametrize(("brand", "reference"), [(1, -2.48), (2, -1.40), (3, -2.78)])
def test_orange_juice_elasticities(oj: pd.DataFrame, brand: int, reference: float) -> None:
    estimate = estimate_elasticity(oj, brand)

    assert abs(estimate.elasticity - reference) <= 0.3
    assert estimate.ci_low <= estimate.elasticity <= estimate.ci_high < 0
