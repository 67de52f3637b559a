from collections.abc import Callable
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from aimesh.errors import InvalidInputError
from aimesh.ml.churn import ChurnModel, train_churn


def test_predict_proba_is_one_probability_per_row(
    churn_model: ChurnModel, churn_frame: pd.DataFrame
) -> None:
    proba = churn_model.predict_proba(churn_frame)

    assert proba.shape == (len(churn_frame),)
    assert ((proba > 0) & (proba < 1)).all()
    np.testing.assert_allclose(proba, expit(churn_model.decision_function(churn_frame)))


def test_features_are_exposed_and_column_order_does_not_matter(
    churn_model: ChurnModel, churn_frame: pd.DataFrame
) -> None:
    assert churn_model.features == ["monthly_charges", "tenure", "contract", "total_charges"]
    assert churn_model.categories == {"contract": ["Month-to-month", "One year", "Two year"]}
    shuffled = churn_frame[["contract", "churn", "total_charges", "tenure", "monthly_charges"]]

    np.testing.assert_array_equal(
        churn_model.predict_proba(shuffled), churn_model.predict_proba(churn_frame)
    )


def test_explain_contributions_sum_to_the_score(
    churn_model: ChurnModel, churn_frame: pd.DataFrame
) -> None:
    rows = churn_frame.iloc[:20]
    drivers = churn_model.explain(rows, top_k=len(churn_model.features))

    totals = [churn_model.base_value + sum(d.contribution for d in row) for row in drivers]

    np.testing.assert_allclose(totals, churn_model.decision_function(rows), atol=1e-9)


def test_explain_returns_top_drivers_with_raw_values(
    churn_model: ChurnModel, churn_frame: pd.DataFrame
) -> None:
    row = churn_frame.iloc[[0]]

    drivers = churn_model.explain(row, top_k=2)[0]

    assert len(drivers) == 2
    assert abs(drivers[0].contribution) >= abs(drivers[1].contribution)
    for driver in drivers:
        assert driver.value == row[driver.feature].iloc[0]


def test_explain_rejects_top_k_below_one(
    churn_model: ChurnModel, churn_frame: pd.DataFrame
) -> None:
    with pytest.raises(InvalidInputError, match="top_k"):
        churn_model.explain(churn_frame.iloc[:1], top_k=0)


def test_churn_risk_never_falls_when_price_rises(
    churn_model: ChurnModel, churn_frame: pd.DataFrame
) -> None:
    prices = np.linspace(10, 150, 50)
    for _, row in churn_frame.iloc[:25].iterrows():
        grid = pd.DataFrame([row] * len(prices)).assign(monthly_charges=prices)
        assert (np.diff(churn_model.predict_proba(grid)) >= 0).all()


def test_missing_values_and_unseen_categories_are_scored(churn_model: ChurnModel) -> None:
    rows = pd.DataFrame(
        {
            "monthly_charges": [50.0, 50.0],
            "tenure": [np.nan, 3],
            "contract": [None, "Lifetime"],
            "total_charges": [np.nan, 150.0],
        }
    )

    proba = churn_model.predict_proba(rows)

    assert np.isfinite(proba).all()
    values = {d.feature: d.value for d in churn_model.explain(rows, top_k=4)[0]}
    assert values["contract"] is None and values["tenure"] is None


def test_missing_feature_column_is_an_input_error(
    churn_model: ChurnModel, churn_frame: pd.DataFrame
) -> None:
    with pytest.raises(InvalidInputError, match=r"missing feature column\(s\) \['tenure'\]"):
        churn_model.predict_proba(churn_frame.drop(columns="tenure"))


def test_text_in_numeric_feature_is_an_input_error(
    churn_model: ChurnModel, churn_frame: pd.DataFrame
) -> None:
    rows = churn_frame.iloc[:1].astype({"tenure": object})
    rows.loc[rows.index[0], "tenure"] = "ten"

    with pytest.raises(InvalidInputError, match="non-number"):
        churn_model.predict_proba(rows)


def test_monotone_feature_must_be_numeric(churn_frame: pd.DataFrame) -> None:
    model = ChurnModel(monotone_increasing=["contract"])

    with pytest.raises(InvalidInputError, match="monotone_increasing"):
        model.fit(churn_frame.drop(columns="churn"), churn_frame["churn"] == "Yes")


def test_unfitted_model_refuses_to_predict(churn_frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="not fitted"):
        ChurnModel().predict_proba(churn_frame)


def test_every_prediction_runs_on_one_thread(
    churn_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LightGBM's default, a thread per core, made each call wait for a busy core: 8 ms for
    one client's drivers on a loaded machine instead of 0.1 ms (bench/portfolio.py)."""
    threads: list[object] = []
    predict = lgb.Booster.predict

    def spy(self: lgb.Booster, data: object, **kwargs: object) -> object:
        threads.append(kwargs.get("num_threads"))
        return predict(self, data, **kwargs)

    monkeypatch.setattr(lgb.Booster, "predict", spy)
    model = ChurnModel(n_estimators=10, min_child_samples=20, calibration_folds=3)
    model.fit(churn_frame.drop(columns="churn"), churn_frame["churn"] == "Yes")
    model.predict_proba(churn_frame.iloc[:5])
    model.explain(churn_frame.iloc[:2])

    assert len(threads) == 3 + 1 + 1 + 1  # out-of-fold, base value, scores, drivers
    assert set(threads) == {1}


def test_model_survives_joblib(
    churn_model: ChurnModel, churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    joblib.dump(churn_model, tmp_path / "m.joblib")

    loaded = joblib.load(tmp_path / "m.joblib")

    np.testing.assert_array_equal(
        loaded.predict_proba(churn_frame), churn_model.predict_proba(churn_frame)
    )


def test_train_churn_cross_validates_and_fills_the_card(
    make_churn: Callable[..., pd.DataFrame],
) -> None:
    frame = make_churn(300, seed=1).assign(customer_id=[f"id{i}" for i in range(300)])

    model, card = train_churn(
        frame,
        "churn",
        seed=3,
        folds=3,
        monotone_increasing=["monthly_charges"],
        name="churn-toy",
        dataset="toy.csv",
        data_sha256="c" * 64,
    )

    assert card.name == "churn-toy" and card.version.startswith("churn-toy-")
    assert card.features == model.features and "customer_id" not in model.features
    assert card.dropped_columns == {"customer_id": "identifier (every value unique)"}
    assert card.positive_label == "Yes" and card.target == "churn" and card.n_rows == 300
    assert card.params["monotone_increasing"] == ["monthly_charges"]
    assert card.params["calibration_folds"] == 3 and card.params["seed"] == 3
    expected = {"roc_auc", "average_precision", "brier", "log_loss", "f1", "f1_threshold"}
    assert expected <= set(card.metrics)
    assert 0.7 < card.metrics["roc_auc"] <= 1
    assert card.metrics["positive_rate"] == pytest.approx((frame["churn"] == "Yes").mean())
    assert "3-fold stratified" in card.evaluation
