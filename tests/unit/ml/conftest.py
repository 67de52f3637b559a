"""Fixtures of the ML unit tests: small synthetic tables and slices of the real data."""

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from aimesh.config import REPO_DATA_DIR, Settings
from aimesh.ml.churn import ChurnModel
from aimesh.ml.portfolio import load_portfolio
from aimesh.ml.tabular import prepare_tabular


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
    """The first 800 clients of the real portfolio (includes 2 with empty total_charges)."""
    return load_portfolio(REPO_DATA_DIR / "telco_churn.csv").iloc[:800].copy()


@pytest.fixture(scope="session")
def data_slices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small slices of the real datasets, written once per session."""
    data = tmp_path_factory.mktemp("data")
    telco = pd.read_csv(REPO_DATA_DIR / "telco_churn.csv", nrows=600, dtype=str)
    telco.to_csv(data / "telco_churn.csv", index=False)
    shuttle = pd.read_csv(REPO_DATA_DIR / "shuttle_anomaly.csv.gz")
    shuttle.sample(3000, random_state=0).to_csv(data / "shuttle_anomaly.csv.gz", index=False)
    oj = pd.read_csv(REPO_DATA_DIR / "dominicks_oj.csv.gz")
    oj[oj["store"] <= 40].to_csv(data / "dominicks_oj.csv.gz", index=False)
    return data


@pytest.fixture
def ml_settings(tmp_path: Path, data_slices: Path) -> Settings:
    """Settings: data_dir holds a copy of the slices, home is empty, 3 folds for speed."""
    data = shutil.copytree(data_slices, tmp_path / "data")
    return Settings(home=tmp_path / "home", data_dir=data, cv_folds=3)
