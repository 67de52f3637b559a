import shutil
from pathlib import Path

import pandas as pd
import pytest

from aimesh.config import Settings
from aimesh.errors import DataFileError, InvalidInputError, UnknownClientError
from aimesh.ml.service import MLService, evaluate


def test_nothing_is_loaded_at_construction(ml_settings: Settings) -> None:
    MLService(ml_settings)

    assert not ml_settings.home.exists()


def test_missing_data_file_is_a_data_file_error(ml_settings: Settings) -> None:
    (ml_settings.data_dir / "telco_churn.csv").unlink()

    with pytest.raises(DataFileError, match="telco_churn.csv does not exist"):
        MLService(ml_settings).churn()


def test_churn_is_trained_once_then_loaded(ml_settings: Settings) -> None:
    first = MLService(ml_settings).churn()
    again = MLService(ml_settings).churn()

    assert first.notes == ["no saved model 'churn'; trained one"]
    assert again.notes == [] and again.card.version == first.card.version
    assert first.card.dataset == "telco_churn.csv"
    assert first.card.params["monotone_increasing"] == ["monthly_charges"]
    assert first.card.data_sha256 == MLService(ml_settings).portfolio_source().sha256


def test_changed_portfolio_retrains(ml_settings: Settings) -> None:
    first = MLService(ml_settings).churn()
    path = ml_settings.data_dir / "telco_churn.csv"
    path.write_text(path.read_text().replace("29.85", "29.95", 1))

    again = MLService(ml_settings).churn()

    assert again.card.version != first.card.version and "changed" in again.notes[0]


def test_changed_seed_retrains(ml_settings: Settings) -> None:
    MLService(ml_settings).anomaly()

    again = MLService(ml_settings.model_copy(update={"seed": 7})).anomaly()

    assert again.card.params["seed"] == 7 and "hyper-parameters" in again.notes[0]


def test_churn_scores_cover_the_portfolio_and_are_cached(ml_settings: Settings) -> None:
    service = MLService(ml_settings)

    scores = service.churn_scores()

    assert scores.index.equals(service.portfolio().index) and scores.name == "churn_probability"
    assert scores.between(0, 1).all()
    assert service.churn_scores() is scores


def test_billing_anomalies_and_pricing(ml_settings: Settings) -> None:
    service = MLService(ml_settings)

    anomalies = service.billing_anomalies(limit=3, offset=2)
    advice = service.recommend_price("c10", max_churn_increase=0.0)

    assert [a.rank for a in anomalies] == [3, 4, 5]
    assert service.anomaly().card.name == "billing-anomaly"
    assert advice.client_id == "C00010" and advice.max_change == ml_settings.price_change_limit
    assert advice.churn_risk_change <= 0
    with pytest.raises(UnknownClientError):
        service.recommend_price("C00601")


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
    portfolio_card = service.train_churn_csv(ml_settings.data_dir / "telco_churn.csv")
    assert portfolio_card.name == "churn" and service.churn().card == portfolio_card


def test_train_churn_csv_rejects_bad_requests(ml_settings: Settings, tmp_path: Path) -> None:
    service = MLService(ml_settings)
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(other, index=False)

    with pytest.raises(InvalidInputError, match="reserved"):
        service.train_churn_csv(other, "b", name="churn")
    with pytest.raises(InvalidInputError, match="not a valid model name"):
        service.train_churn_csv(other, "b", name="Bad Name")
    with pytest.raises(DataFileError, match="no column 'churn'"):
        service.train_churn_csv(other, "churn")


def test_evaluate_lists_every_model(ml_settings: Settings, tmp_path: Path) -> None:
    other = tmp_path / "second.csv"
    shutil.copy(ml_settings.data_dir / "telco_churn.csv", other)
    MLService(ml_settings).train_churn_csv(other, "churn")

    rows = {row.model: row for row in evaluate(ml_settings)}

    assert list(rows) == [
        "churn",
        "shuttle-anomaly",
        "billing-anomaly",
        "oj-elasticity-brand1",
        "oj-elasticity-brand2",
        "oj-elasticity-brand3",
        "churn-second",
    ]
    assert {"roc_auc", "average_precision", "brier", "f1"} <= set(rows["churn"].metrics)
    assert rows["shuttle-anomaly"].metrics["roc_auc"] > 0.9
    brand1 = rows["oj-elasticity-brand1"].metrics
    assert brand1["reference"] == -2.48
    assert brand1["abs_error"] == pytest.approx(abs(brand1["elasticity"] + 2.48))
    assert brand1["ci_low"] < brand1["elasticity"] < brand1["ci_high"]
