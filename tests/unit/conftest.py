"""Fixtures of the unit tests: small slices of the real data in a fresh data directory."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from aimesh.config import REPO_DATA_DIR, Settings


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
