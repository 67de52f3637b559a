"""Fixtures of the ML unit tests: small synthetic tables and slices of the real data."""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from aimesh.config import REPO_DATA_DIR
from aimesh.ml.churn import ChurnModel
from aimesh.ml.tabular import prepare_tabular
from aimesh.portfolio.sample import load_sample


def make_churn_frame(n_rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A churn table whose risk rises with price, falls with tenure, peaks month-to-month."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(20, 110, n_rows).round(2)
    tenure = rng.integers(0, 72, n_rows)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n_rows)
    logit = -0.8 + 0.03 * (price - 60) - 0.05 * tenure + 1.5 * (contract == "Month-to-month")
    churned = rng.random(n_rows) < expit(logit)
    return pd.DataFrame(
        {
            "monthly_charges": price,
            "tenure": tenure,
            "contract": contract,
            "total_charges": (price * tenure).round(2),
            "churn": np.where(churned, "Yes", "No"),
        }
    )


@pytest.fixture(scope="session")
def churn_frame() -> pd.DataFrame:
    return make_churn_frame()


@pytest.fixture(scope="session")
def make_churn() -> Callable[..., pd.DataFrame]:
    """The synthetic churn table factory: make_churn(n_rows=400, seed=0)."""
    return make_churn_frame


@pytest.fixture(scope="session")
def churn_model(churn_frame: pd.DataFrame) -> ChurnModel:
    table = prepare_tabular(churn_frame, "churn")
    model = ChurnModel(
        n_estimators=80, min_child_samples=20, monotone_increasing=["monthly_charges"]
    )
    return model.fit(table.X, table.y)


@pytest.fixture(scope="session")
def telco_slice() -> pd.DataFrame:
    """The first 800 clients of the sample book (includes 2 with empty total_charges)."""
    return load_sample(REPO_DATA_DIR)[0].iloc[:800].copy()
