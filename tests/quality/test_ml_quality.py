"""Model-quality floors on the real datasets (data/README.md gives the reference figures)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from aimesh.config import REPO_DATA_DIR
from aimesh.ml.anomaly import score_billing, train_billing_detector, train_labelled_detector
from aimesh.ml.churn import train_churn
from aimesh.ml.pricing import estimate_elasticity
from aimesh.portfolio.sample import load_sample

pytestmark = pytest.mark.quality


def test_churn_cross_validated_roc_auc_on_telco() -> None:
    book = load_sample(REPO_DATA_DIR)[0]

    _, card = train_churn(
        book, "churned", seed=42, folds=5, monotone_increasing=["monthly_charges"]
    )

    assert card.metrics["roc_auc"] >= 0.84
    assert card.metrics["brier"] < 0.15


def test_anomaly_detector_roc_auc_on_shuttle() -> None:
    shuttle = pd.read_csv(REPO_DATA_DIR / "shuttle_anomaly.csv.gz")

    _, card = train_labelled_detector(shuttle, "anomaly", seed=42, name="shuttle-anomaly")

    assert card.metrics["roc_auc"] >= 0.99


def planted_billing_errors(book: pd.DataFrame, per_kind: int, seed: int) -> dict[str, list]:
    """Plant three kinds of billing error on distinct clients of 12 months or more (in place).

    ``under``: total billed cut to a third (a revenue leak); ``over``: total billed x 1.5;
    ``price``: monthly price and total billed x 1.5 (a consistent history at a price out of
    line with peers). Returns kind -> client ids.
    """
    picks = np.random.default_rng(seed).choice(
        book.index[book["tenure_months"] >= 12], 3 * per_kind, replace=False
    )
    kinds = {
        "under": list(picks[:per_kind]),
        "over": list(picks[per_kind : 2 * per_kind]),
        "price": list(picks[2 * per_kind :]),
    }
    book.loc[kinds["under"], "total_charges"] /= 3
    book.loc[kinds["over"], "total_charges"] *= 1.5
    book.loc[kinds["price"], ["monthly_charges", "total_charges"]] *= 1.5
    return kinds


@pytest.mark.parametrize("kind", ["under", "over", "price"])
def test_billing_detector_finds_planted_errors_in_the_sample_book(kind: str) -> None:
    book = load_sample(REPO_DATA_DIR)[0].copy()
    planted = planted_billing_errors(book, per_kind=25, seed=0)[kind]

    detector, _ = train_billing_detector(book, seed=42)
    scores = score_billing(detector, book)["score"]

    rank = scores.rank(ascending=False)[planted]
    # Measured: top 1% (70 clients) holds 16/17/17 of the 25 under/over/price errors,
    # top 5% 25/24/25; ROC AUC 0.992/0.988/0.996 (the Telco-only features of earlier
    # versions: 4/13/17, 23/23/25, 0.977/0.976/0.991).
    assert (rank <= len(book) * 0.01).sum() >= 12
    assert (rank <= len(book) * 0.05).sum() >= 22
    assert roc_auc_score(book.index.isin(planted), scores) >= 0.98


@pytest.fixture(scope="module")
def oj() -> pd.DataFrame:
    return pd.read_csv(REPO_DATA_DIR / "dominicks_oj.csv.gz")


@pytest.mark.parametrize(("brand", "reference"), [(1, -2.48), (2, -1.40), (3, -2.78)])
def test_orange_juice_elasticities(oj: pd.DataFrame, brand: int, reference: float) -> None:
    estimate = estimate_elasticity(oj, brand)

    assert abs(estimate.elasticity - reference) <= 0.3
    assert estimate.ci_low <= estimate.elasticity <= estimate.ci_high < 0
