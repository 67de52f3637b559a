import numpy as np
import pandas as pd
import pytest

from aimesh.errors import InvalidInputError, ModelUnavailableError, UnknownClientError
from aimesh.ml.pricing import recommend_price
from aimesh.portfolio import scoring
from aimesh.portfolio.book import ClientBook
from aimesh.portfolio.filters import Range
from aimesh.portfolio.results import BookResult
from tests.helpers.books import book_info, telco_frame, trained_book

SEGMENT = {"contract": "month-to-month", "tenure_months": Range(max=12)}


def in_segment(frame: pd.DataFrame) -> pd.Series:
    """The churn scores' segment: SEGMENT, of the clients that have not churned."""
    segment = (frame["contract"] == "Month-to-month") & (frame["tenure_months"] <= 12)
    return segment & (frame["churned"] != 1)


def probabilities(book: ClientBook, rows: pd.DataFrame) -> np.ndarray:
    return book.churn().model.predict_proba(rows)


def assert_stamped(result: BookResult, book: ClientBook, model_version: str) -> None:
    assert result.book_version == book.version == result.provenance.book_version
    assert result.sample is book.sample is result.provenance.sample
    assert result.model_version == model_version == result.provenance.model_version
    assert model_version in result.render()  # type: ignore[attr-defined]


def test_churn_risks_rank_the_segment_by_the_models_probability(sample_book: ClientBook) -> None:
    frame = sample_book.frame()
    expected = in_segment(frame)

    result = scoring.churn_risks(sample_book, SEGMENT, limit=25)

    assert result.matched == expected.sum() and result.book_size == len(frame)
    assert result.filters == {
        "contract": "Month-to-month",
        "tenure_months": Range(max=12),
        "churned": "not churned",
    }
    ids = [c.client_id for c in result.clients]
    assert expected[ids].all()
    assert [c.rank for c in result.clients] == list(range(1, 26))
    proba = probabilities(sample_book, frame.loc[ids])
    np.testing.assert_allclose([c.churn_probability for c in result.clients], proba)
    assert (np.diff(proba) <= 0).all()
    assert proba[0] == pytest.approx(probabilities(sample_book, frame[expected]).max())
    assert_stamped(result, sample_book, sample_book.churn().card.version)


def test_the_next_page_continues_the_segments_ranking(sample_book: ClientBook) -> None:
    first = scoring.churn_risks(sample_book, SEGMENT, limit=10)
    second = scoring.churn_risks(sample_book, SEGMENT, limit=5, offset=5)
    beyond = scoring.churn_risks(sample_book, SEGMENT, limit=5, offset=first.matched)

    assert [c.client_id for c in second.clients] == [c.client_id for c in first.clients[5:]]
    assert [c.rank for c in second.clients] == [6, 7, 8, 9, 10]
    assert beyond.clients == [] and "No client ranked from" in beyond.render()


def test_client_churn_ranks_the_client_in_the_whole_book(sample_book: ClientBook) -> None:
    frame = sample_book.frame()
    all_proba = probabilities(sample_book, frame)

    result = scoring.client_churn(sample_book, " c42 ")

    client = result.client
    assert client.client_id == "C00042" and result.book_size == len(frame)
    assert client.churn_probability == pytest.approx(all_proba[41])
    lost = (frame["churned"] == 1).to_numpy()
    ahead = (lost == lost[41]) & (all_proba > all_proba[41])
    assert client.rank == ahead.sum() + (~lost).sum() * lost[41] + 1  # the lost rank last
    assert client.monthly_charges == frame.loc["C00042", "monthly_charges"]
    assert client.tenure_months == frame.loc["C00042", "tenure_months"]
    assert client.name is None  # the sample has no names
    assert f"{client.churn_probability * 100:.1f}%" in result.render()
    assert_stamped(result, sample_book, sample_book.churn().card.version)


def test_drivers_say_which_way_they_push(sample_book: ClientBook) -> None:
    top = scoring.churn_risks(sample_book, limit=1).clients[0]
    safest = scoring.client_churn(sample_book, "C00042").client  # two-year contract, 70 months

    for driver in top.drivers + safest.drivers:
        assert driver.effect == ("raises" if driver.contribution > 0 else "lowers")
    assert all(d.effect == "raises" for d in top.drivers[:1])
    assert "contract Two year: lowers churn risk" in safest.finding(1).text


def test_an_unknown_client_is_a_clear_error(sample_book: ClientBook) -> None:
    with pytest.raises(UnknownClientError, match="C99999"):
        scoring.client_churn(sample_book, "C99999")


def test_churn_summary_sums_the_models_probabilities(sample_book: ClientBook) -> None:
    frame = sample_book.frame()
    rows = frame[in_segment(frame)]
    proba = probabilities(sample_book, rows)

    result = scoring.churn_summary(sample_book, SEGMENT, threshold=0.6)

    assert result.matched == len(rows)
    assert result.expected_churners == pytest.approx(proba.sum())
    assert result.share_above_threshold == pytest.approx((proba > 0.6).mean())
    assert result.monthly_revenue_at_risk == pytest.approx((rows["monthly_charges"] * proba).sum())
    assert f"{proba.sum():.1f}" in result.render()
    assert_stamped(result, sample_book, sample_book.churn().card.version)


def test_an_empty_segment_sums_to_nothing(sample_book: ClientBook) -> None:
    result = scoring.churn_summary(sample_book, {"tenure_months": Range(min=1000)})

    assert (result.matched, result.expected_churners, result.share_above_threshold) == (
        0,
        0.0,
        None,
    )


def test_billing_anomalies_rank_the_segment_by_the_books_scores(sample_book: ClientBook) -> None:
    frame = sample_book.frame()
    scores = sample_book.anomaly().model.score_samples(
        scoring.billing_scores(sample_book).drop(columns="score")
    )
    scores = pd.Series(scores, index=frame.index)
    segment = {"contract": "Two year"}

    result = scoring.billing_anomalies(sample_book, segment, limit=10)

    ids = [a.client_id for a in result.anomalies]
    assert (frame.loc[ids, "contract"] == "Two year").all()
    assert result.matched == (frame["contract"] == "Two year").sum()
    np.testing.assert_allclose([a.score for a in result.anomalies], scores[ids])
    assert result.anomalies[0].score == pytest.approx(scores[frame["contract"] == "Two year"].max())
    assert [a.rank for a in result.anomalies] == list(range(1, 11))
    assert_stamped(result, sample_book, sample_book.anomaly().card.version)


def test_client_billing_ranks_the_client_as_the_books_ranking_does(
    sample_book: ClientBook,
) -> None:
    page = scoring.billing_anomalies(sample_book, None, 3, 40).anomalies
    for anomaly in page:
        checked = scoring.client_billing(sample_book, anomaly.client_id)
        assert checked.anomaly == anomaly
        assert checked.book_size == len(sample_book.frame())
    last = scoring.billing_anomalies(sample_book, None, 1, len(sample_book.frame()) - 1)
    quiet = scoring.client_billing(sample_book, last.anomalies[0].client_id)
    assert quiet.anomaly.score <= 0.5 and "billing in line: not anomalous" in quiet.render()
    assert quiet.findings[0].facts["billing"] == "in line"
    top = scoring.client_billing(sample_book, page[0].client_id)
    assert top.anomaly.score > 0.5 and "billing out of line: anomalous" in top.render()


def test_price_recommendation_goes_through_recommend_price(sample_book: ClientBook) -> None:
    model = sample_book.churn().model
    row = sample_book.frame().loc[["C01234"]]
    expected = recommend_price(model, row, max_change=0.1, max_churn_increase=0.0)

    result = scoring.price_recommendation(sample_book, "c1234", max_change=0.1)

    assert result.recommendation == expected
    assert result.recommendation.client_id == "C01234"
    assert "churn risk may not rise" in result.render()
    assert_stamped(result, sample_book, sample_book.churn().card.version)


def test_price_change_impact_rescores_the_segment_at_the_new_prices(
    sample_book: ClientBook,
) -> None:
    frame = sample_book.frame()
    rows = frame[in_segment(frame)]
    new_prices = (rows["monthly_charges"] * 1.08).round(2)
    before = probabilities(sample_book, rows)
    after = probabilities(sample_book, rows.assign(monthly_charges=new_prices))

    result = scoring.price_change_impact(sample_book, SEGMENT, 8)

    assert result.revenue_before == pytest.approx((rows["monthly_charges"] * (1 - before)).sum())
    assert result.revenue_after == pytest.approx((new_prices * (1 - after)).sum())
    assert result.churners_before == pytest.approx(before.sum())
    assert result.churners_after == pytest.approx(after.sum())
    assert result.churners_after >= result.churners_before  # monotone in the price
    assert result.revenue_change == pytest.approx(result.revenue_after - result.revenue_before)
    assert result.priced == result.matched == len(rows)
    assert_stamped(result, sample_book, sample_book.churn().card.version)


def test_no_price_change_changes_nothing(sample_book: ClientBook) -> None:
    result = scoring.price_change_impact(sample_book, None, 0)

    assert result.revenue_after == pytest.approx(result.revenue_before)
    assert result.churners_after == pytest.approx(result.churners_before)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda b: scoring.churn_risks(b, limit=0), "limit"),
        (lambda b: scoring.churn_risks(b, offset=-1), "offset"),
        (lambda b: scoring.billing_anomalies(b, limit=501), "limit"),
        (lambda b: scoring.churn_risks(b, {"plan": "x"}), "filters.plan"),
        (lambda b: scoring.churn_summary(b, threshold=1.0), "threshold"),
        (lambda b: scoring.price_change_impact(b, None, 51), "change_pct"),
        (lambda b: scoring.price_change_impact(b, None, -50.5), "change_pct"),
        (lambda b: scoring.price_recommendation(b, "C00001", max_change=0.9), "max_change"),
    ],
)
def test_bad_arguments_name_their_field(sample_book: ClientBook, call, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        call(sample_book)

    assert caught.value.field == field


def test_a_book_without_outcomes_still_finds_billing_anomalies(plain_book: ClientBook) -> None:
    result = scoring.billing_anomalies(plain_book, {"plan": "dsl"}, limit=3)

    assert plain_book.anomaly().card.features == ["monthly_charges", "price_residual"]
    ids = [a.client_id for a in result.anomalies]
    assert (plain_book.frame().loc[ids, "plan"] == "DSL").all()
    top = result.anomalies[0]
    assert (top.client_id, top.monthly_charges) == ("K0007", 400.0)
    assert top.total_charges is None and top.tenure_months is None
    assert (result.book_version, result.sample) == (2, False)
    assert "beta's client book v2" in result.render()
    assert "tenure" not in result.render().split("\n")[1]


def test_a_book_without_outcomes_has_no_churn_model(plain_book: ClientBook) -> None:
    with pytest.raises(ModelUnavailableError, match="no churn outcomes: 800 rows, 0 labelled"):
        scoring.churn_risks(plain_book)
    with pytest.raises(ModelUnavailableError):
        scoring.price_change_impact(plain_book, None, 5)


@pytest.fixture(scope="module")
def unpriced_book(tmp_path_factory: pytest.TempPathFactory) -> ClientBook:
    frame = telco_frame(1500).drop(columns="monthly_charges")
    frame.insert(0, "name", [f"Client {i + 1}" for i in range(len(frame))])
    info = book_info(frame, tenant="gamma", version=1)
    return trained_book(frame, info, tmp_path_factory.mktemp("unpriced"))


def test_a_book_without_prices_has_churn_but_no_revenue_figures(
    unpriced_book: ClientBook,
) -> None:
    summary = scoring.churn_summary(unpriced_book)
    risk = scoring.churn_risks(unpriced_book, limit=1).clients[0]

    assert summary.monthly_revenue_at_risk is None and "revenue" not in summary.render()
    line = risk.finding(1).text
    assert risk.monthly_charges is None and "/month" not in line
    assert risk.name == f"Client {int(risk.client_id[1:])}"
    assert line.startswith(f"{risk.client_id} ({risk.name}): churn probability")
    assert scoring.churn_risks(unpriced_book, offset=summary.matched).clients == []
    assert "name" not in unpriced_book.churn().card.features
    with pytest.raises(InvalidInputError) as caught:
        scoring.price_recommendation(unpriced_book, "C00001")
    assert caught.value.field == "monthly_charges"
    with pytest.raises(ModelUnavailableError, match="no monthly_charges column"):
        scoring.billing_anomalies(unpriced_book)


def test_scores_are_computed_once_per_book(sample_book: ClientBook) -> None:
    assert scoring.churn_scores(sample_book) is scoring.churn_scores(sample_book)
    assert scoring.billing_scores(sample_book) is scoring.billing_scores(sample_book)


def test_the_sample_book_says_it_is_the_sample(sample_book: ClientBook) -> None:
    provenance = scoring.client_churn(sample_book, "C00001").provenance

    assert provenance.render() == (
        f"Source: churn model {provenance.model_version} on the sample data (not your client book)."
    )
    assert "sample: telco_churn.csv" in provenance.dataset  # in full in the structured result
    assert provenance.data_sha256 == sample_book.churn().card.data_sha256


def test_clients_already_lost_are_ranked_only_when_asked_for(sample_book: ClientBook) -> None:
    frame = sample_book.frame()

    current = scoring.churn_risks(sample_book, limit=50)
    lost = scoring.churn_risks(sample_book, {"churned": 1}, limit=5)

    assert current.matched == (frame["churned"] != 1).sum()
    assert frame.loc[[c.client_id for c in current.clients], "churned"].eq(0).all()
    assert lost.matched == (frame["churned"] == 1).sum() and lost.filters == {"churned": 1.0}
