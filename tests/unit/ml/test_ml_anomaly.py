import numpy as np
import pandas as pd
import pytest

from aimesh.errors import DataFileError, InvalidInputError
from aimesh.ml.anomaly import (
    BILLING_FEATURES,
    AnomalyDetector,
    billing_features,
    rank_billing_anomalies,
    score_billing,
    train_billing_detector,
    train_labelled_detector,
)


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    """500 normal rows; row 0 has feature c 12 standard deviations high."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(500, 4)), columns=["a", "b", "c", "d"])
    frame.loc[0, "c"] = 12.0
    return frame


@pytest.fixture(scope="module")
def detector(planted: pd.DataFrame) -> AnomalyDetector:
    return AnomalyDetector(n_estimators=100, seed=1).fit(planted)


def test_planted_row_scores_in_the_top_percent(
    detector: AnomalyDetector, planted: pd.DataFrame
) -> None:
    scores = detector.score_samples(planted)

    assert scores.shape == (500,)
    assert ((scores > 0) & (scores <= 1)).all()
    assert (scores > scores[0]).sum() < 5


def test_explain_names_the_planted_feature(
    detector: AnomalyDetector, planted: pd.DataFrame
) -> None:
    reasons = detector.explain(planted.iloc[[0]], top_k=2)[0]

    assert [r.feature for r in reasons][0] == "c"
    assert reasons[0].value == 12.0
    assert reasons[0].typical == pytest.approx(planted["c"].median())
    assert reasons[0].robust_z > 8
    assert abs(reasons[1].robust_z) < abs(reasons[0].robust_z)


def test_robust_z_is_signed_median_over_scaled_mad(detector: AnomalyDetector) -> None:
    row = pd.DataFrame({"a": [-5.0], "b": [0.0], "c": [0.0], "d": [0.0]})

    z = detector.robust_z(row)[0, 0]

    assert z == pytest.approx((-5.0 - detector.median[0]) / detector.scale[0])
    assert z < 0


def test_zero_mad_falls_back_to_mean_absolute_deviation() -> None:
    frame = pd.DataFrame({"flag": [0.0] * 90 + [1.0] * 10, "x": np.arange(100.0)})

    detector = AnomalyDetector(n_estimators=10).fit(frame)

    assert detector.scale[0] == pytest.approx(1.2533 * 0.1)


def test_missing_values_are_imputed_and_not_reasons(detector: AnomalyDetector) -> None:
    row = pd.DataFrame({"a": [np.nan], "b": [0.0], "c": [9.0], "d": [0.0]})

    assert np.isfinite(detector.score_samples(row)).all()
    assert "a" not in [r.feature for r in detector.explain(row, top_k=4)[0]]


def test_bad_input_is_rejected(detector: AnomalyDetector, planted: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="non-numeric"):
        AnomalyDetector().fit(planted.assign(e="text"))
    with pytest.raises(InvalidInputError, match="missing feature"):
        detector.score_samples(planted.drop(columns="a"))
    with pytest.raises(InvalidInputError, match="not fitted"):
        AnomalyDetector().score_samples(planted)
    with pytest.raises(InvalidInputError, match="top_k"):
        detector.explain(planted, top_k=0)


def tiny_portfolio() -> pd.DataFrame:
    services = {
        "phone_service": [1, 1, 0],
        "multiple_lines": ["Yes", "No", "No phone service"],
        "internet_service": ["Fiber optic", "DSL", "No"],
        **{
            name: ["Yes", "No", "No internet service"]
            for name in [
                "online_security",
                "online_backup",
                "device_protection",
                "tech_support",
                "streaming_tv",
                "streaming_movies",
            ]
        },
    }
    return pd.DataFrame(
        {
            "monthly_charges": [100.0, 50.0, 20.0],
            "total_charges": [1000.0, 160.0, np.nan],
            "tenure": [10.0, 3.0, 0.0],
            **services,
        },
        index=pd.Index(["C00001", "C00002", "C00003"], name="client_id"),
    )


def test_billing_features_follow_their_formulas() -> None:
    features = billing_features(tiny_portfolio())

    assert features.columns.tolist() == BILLING_FEATURES
    assert features["total_charges"].tolist() == [1000.0, 160.0, 0.0]
    assert features["billing_gap"].tolist() == [0.0, 10.0, 0.0]
    assert features["n_services"].tolist() == [9, 2, 0]
    np.testing.assert_allclose(features["price_residual"], 0.0, atol=1e-9)  # 3 rows fit exactly


def test_billing_features_need_the_service_columns() -> None:
    with pytest.raises(DataFileError, match="streaming_tv"):
        billing_features(tiny_portfolio().drop(columns="streaming_tv"))


@pytest.fixture(scope="module")
def leaky(telco_slice: pd.DataFrame) -> pd.DataFrame:
    """The portfolio slice with one long-time client billed a third of its price."""
    portfolio = telco_slice.copy()
    client = portfolio["tenure"].idxmax()
    portfolio.loc[client, "total_charges"] = portfolio.loc[client, "total_charges"] / 3
    return portfolio


def test_under_billed_client_ranks_first(leaky: pd.DataFrame) -> None:
    detector, card = train_billing_detector(
        leaky, seed=0, dataset="slice.csv", data_sha256="d" * 64
    )

    top = rank_billing_anomalies(detector, leaky, limit=1)[0]

    assert top.client_id == leaky["tenure"].idxmax() and top.rank == 1
    assert top.reasons[0].feature == "billing_gap" and top.reasons[0].robust_z < -5
    assert top.total_charges == pytest.approx(leaky.loc[top.client_id, "total_charges"])
    assert card.target is None and card.features == BILLING_FEATURES
    assert card.metrics["score_max"] == pytest.approx(top.score)
    assert 0 <= card.metrics["share_above_0_5"] <= 1


def test_ranking_pages_are_consistent(leaky: pd.DataFrame) -> None:
    detector, _ = train_billing_detector(leaky, seed=0)
    scored = score_billing(detector, leaky)

    first = rank_billing_anomalies(detector, leaky, limit=10, scored=scored)
    second = rank_billing_anomalies(detector, leaky, limit=5, offset=5)

    assert [a.rank for a in first] == list(range(1, 11))
    assert [a.score for a in first] == sorted((a.score for a in first), reverse=True)
    assert [a.client_id for a in first[5:]] == [a.client_id for a in second]
    assert rank_billing_anomalies(detector, leaky, limit=5, offset=len(leaky)) == []


@pytest.mark.parametrize(
    ("limit", "offset", "field"), [(0, 0, "limit"), (501, 0, "limit"), (5, -1, "offset")]
)
def test_ranking_arguments_are_validated(
    leaky: pd.DataFrame, limit: int, offset: int, field: str
) -> None:
    detector = AnomalyDetector(n_estimators=5).fit(billing_features(leaky))

    with pytest.raises(InvalidInputError) as caught:
        rank_billing_anomalies(detector, leaky, limit=limit, offset=offset)

    assert caught.value.field == field


def test_labelled_detector_reports_ranking_metrics(planted: pd.DataFrame) -> None:
    rng = np.random.default_rng(2)
    data = planted.assign(outlier=0)
    data.loc[:19, ["a", "b"]] = rng.normal(8, 1, size=(20, 2))
    data.loc[:19, "outlier"] = 1

    _, card = train_labelled_detector(data, "outlier", seed=0, name="toy-anomaly")

    assert card.features == ["a", "b", "c", "d"] and card.target == "outlier"
    assert card.metrics["roc_auc"] > 0.95 and card.metrics["average_precision"] > 0.8
    assert card.metrics["anomaly_rate"] == pytest.approx(20 / 500)
