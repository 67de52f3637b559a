import shutil
from pathlib import Path

import pandas as pd
import pytest

from aimesh.config import Settings
from aimesh.errors import DataFileError, InvalidInputError
from aimesh.ml.service import MLService, evaluate


def test_nothing_is_loaded_at_construction(ml_settings: Settings) -> None:
    MLService(ml_settings)

    assert not ml_settings.home.exists()


def test_elasticity_is_cached(ml_settings: Settings) -> None:
    service = MLService(ml_settings)

    estimate = service.elasticity(2)

    assert service.elasticity(2) is estimate and estimate.ci_high < 0
    assert str(service.oj_source()).startswith("dominicks_oj.csv.gz (sha256 ")


def test_train_churn_csv_names_and_saves_models(ml_settings: Settings, tmp_path: Path) -> None:
    other = tmp_path / "Acme Clients.csv"
    shutil.copy(ml_settings.data_dir / "telco_churn.csv", other)
    service = MLService(ml_settings)

    card = service.train_churn_csv(other, "Churn")

    assert card.name == "churn-acme-clients" and card.dataset == "Acme Clients.csv"
    assert card.params["monotone_increasing"] == []
    assert service.registry.card("churn-acme-clients") == card


def test_train_churn_csv_rejects_bad_requests(ml_settings: Settings, tmp_path: Path) -> None:
    service = MLService(ml_settings)
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(other, index=False)

    with pytest.raises(InvalidInputError, match="does not start with 'churn-'"):
        service.train_churn_csv(other, "b", name="churn")
    with pytest.raises(InvalidInputError, match="not a valid model name"):
        service.train_churn_csv(other, "b", name="Bad Name")
    with pytest.raises(DataFileError, match="no column 'churn'"):
        service.train_churn_csv(other, "churn")


def test_evaluate_lists_every_model(ml_settings: Settings, tmp_path: Path) -> None:
    other = tmp_path / "second.csv"
    shutil.copy(ml_settings.data_dir / "telco_churn.csv", other)
    MLService(ml_settings).train_churn_csv(other, "churn")

    first = MLService(ml_settings).registry.card("churn-second")

    rows = {
        row.model: row for row in evaluate(ml_settings, [first.model_copy(update={"name": "x"})])
    }

    assert list(rows) == [
        "x",
        "shuttle-anomaly",
        "oj-elasticity-brand1",
        "oj-elasticity-brand2",
        "oj-elasticity-brand3",
        "churn-second",
    ]
    assert {"roc_auc", "average_precision", "brier", "f1"} <= set(rows["churn-second"].metrics)
    assert rows["shuttle-anomaly"].metrics["roc_auc"] > 0.9
    brand1 = rows["oj-elasticity-brand1"].metrics
    assert brand1["reference"] == -2.48
    assert brand1["abs_error"] == pytest.approx(abs(brand1["elasticity"] + 2.48))
    assert brand1["ci_low"] < brand1["elasticity"] < brand1["ci_high"]
