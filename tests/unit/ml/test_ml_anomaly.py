import numpy as np
import pandas as pd
import pytest

from aimesh.errors import DataFileError, InvalidInputError
from aimesh.ml.anomaly import (
    AnomalyDetector,
    billing_features,
    peer_columns,
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


SAMPLE_FEATURES = ["monthly_charges", "tenure_months", "billing_gap", "price_residual"]


def tiny_book() -> pd.DataFrame:
    services = {
        "phone_service": [1.0, 1.0, 0.0],
        "multiple_lines": ["Yes", "No", "No phone service"],
        "internet_service": ["Fiber optic", "DSL", "No"],
        "online_security": ["Yes", "No", "No internet service"],
    }
    return pd.DataFrame(
        {
            "churned": [1.0, 0.0, np.nan],
            "name": ["Acme", "Bolt", "Cogs"],
            "monthly_charges": [100.0, 50.0, 20.0],
            "total_charges": [1000.0, 160.0, np.nan],
            "tenure_months": [10.0, 3.0, 0.0],
            **services,
        },
        index=pd.Index(["C00001", "C00002", "C00003"], name="client_id"),
    )


def test_billing_features_follow_their_formulas() -> None:
    features = billing_features(tiny_book())

    assert features.columns.tolist() == SAMPLE_FEATURES
    assert features["billing_gap"].tolist() == [0.0, 10.0, 0.0]  # empty total counts as 0
    np.testing.assert_allclose(features["price_residual"], 0.0, atol=1e-9)  # 3 rows fit exactly


def test_peer_columns_are_the_books_other_columns() -> None:
    book = tiny_book().assign(
        email=["a@x", "b@x", "c@x"], region=["north"] * 3, score=[1.0, np.nan, 3.0]
    )

    assert peer_columns(book) == [
        "phone_service",
        "multiple_lines",
        "internet_service",
        "online_security",
        "email",  # three values: a category (text with more than 50 values is not)
        "score",  # a number; constant "region" and the mapped fields are not peers
    ]
    assert "email" not in peer_columns(
        pd.concat([book] * 20).assign(email=[f"{i}@x" for i in range(60)])
    )


def test_billing_features_use_what_the_book_records() -> None:
    rng = np.random.default_rng(0)
    plan = rng.choice(["basic", "pro"], 200)
    price = np.where(plan == "pro", 80.0, 30.0) + rng.normal(0, 1, 200)
    price[7] = 160.0  # a "pro" client billed twice its peers
    plan[7] = "pro"
    price[9] = np.nan
    book = pd.DataFrame({"monthly_charges": price, "plan": plan, "tenure_months": 5.0})

    features = billing_features(book)

    assert features.columns.tolist() == ["monthly_charges", "tenure_months", "price_residual"]
    assert features["price_residual"].abs().idxmax() == 7
    assert features["price_residual"][7] == pytest.approx(80, abs=3)
    assert np.isnan(features["price_residual"][9])
    assert billing_features(book[["monthly_charges"]]).columns.tolist() == ["monthly_charges"]


def test_billing_features_need_monthly_charges() -> None:
    with pytest.raises(DataFileError, match="monthly_charges"):
        billing_features(tiny_book().drop(columns="monthly_charges"))


@pytest.fixture(scope="module")
def leaky(telco_slice: pd.DataFrame) -> pd.DataFrame:
    """The sample book's slice, with one long-time client billed a third of its price."""
    book = telco_slice.copy()
    client = book["tenure_months"].idxmax()
    book.loc[client, "total_charges"] = book.loc[client, "total_charges"] / 3
    return book


def test_under_billed_client_ranks_in_the_top_percent(leaky: pd.DataFrame) -> None:
    detector, card = train_billing_detector(
        leaky, seed=0, dataset="slice.csv", data_sha256="d" * 64
    )

    ranked = rank_billing_anomalies(detector, leaky, limit=len(leaky) // 100)
    top = next(a for a in ranked if a.client_id == leaky["tenure_months"].idxmax())

    assert top.reasons[0].feature == "billing_gap" and top.reasons[0].robust_z < -50
    assert top.total_charges == pytest.approx(leaky.loc[top.client_id, "total_charges"])
    assert top.tenure_months == leaky.loc[top.client_id, "tenure_months"]
    assert card.target is None and card.features == SAMPLE_FEATURES
    assert "price_residual fit on female, senior_citizen" in card.evaluation
    assert card.metrics["score_max"] == pytest.approx(ranked[0].score)
    assert 0 <= card.metrics["share_above_0_5"] <= 1


def test_a_book_with_prices_only_is_ranked_without_tenure_or_totals() -> None:
    book = pd.DataFrame(
        {"monthly_charges": [30.0] * 50 + [300.0]},
        index=pd.Index([f"K{i}" for i in range(51)], name="client_id"),
    )
    detector, card = train_billing_detector(book, seed=0)

    top = rank_billing_anomalies(detector, book, limit=1)[0]

    assert card.features == ["monthly_charges"]
    assert "no price_residual" in card.evaluation
    assert (top.client_id, top.monthly_charges) == ("K50", 300.0)
    assert top.total_charges is None and top.tenure_months is None


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
