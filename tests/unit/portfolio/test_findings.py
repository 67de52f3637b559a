import pytest

from aimesh.ml.pricing import PriceRecommendation
from aimesh.portfolio import scoring
from aimesh.portfolio.book import ClientBook
from aimesh.portfolio.results import ChurnRisks, recommendation_finding
from aimesh.portfolio.wording import ChurnScale, Finding, churn_change, feature_level, price_move


def test_each_clients_figures_are_grouped_under_its_id(sample_book: ClientBook) -> None:
    result = scoring.churn_risks(sample_book, limit=5)

    heading, *clients, scale, source = result.findings
    assert heading.client_id is None and heading.text.startswith("Clients ranked 1-5")
    assert [f.client_id for f in clients] == [c.client_id for c in result.clients]
    for finding, client in zip(clients, result.clients, strict=True):
        assert finding.text.startswith(
            f"{client.client_id}: churn probability {client.churn_probability * 100:.1f}% "
            f"(high: top 10% of the book), rank {client.rank} of {result.matched}"
        )
        assert finding.facts["churn"] == client.churn_level == "high"
        for driver in client.drivers:
            assert finding.facts[driver.feature] == driver.effect
    assert scale.text.startswith(f"Churn levels compare with the book's {result.matched} current")
    assert source.text.startswith("Source: churn model") and source.client_id is None
    assert result.render() == "\n".join(f.text for f in result.findings)


def test_churn_levels_follow_the_books_median_and_top_decile(sample_book: ClientBook) -> None:
    frame = sample_book.frame()
    current = scoring.churn_scores(sample_book)[frame["churned"] != 1]

    scale = scoring.churn_scale(sample_book)
    ranked = scoring.churn_risks(sample_book, limit=500, offset=300).clients

    assert scale == ChurnScale(
        clients=len(current), median=current.median(), top_decile=current.quantile(0.9)
    )
    assert {c.churn_level for c in ranked} == {"high", "moderate"}
    for client in ranked:
        assert client.churn_level == scale.level(client.churn_probability)


def test_a_client_with_a_low_probability_is_not_called_high(sample_book: ClientBook) -> None:
    result = scoring.client_churn(sample_book, "C00042")  # two-year contract, 70 months

    finding = result.findings[0]
    assert result.client.churn_probability < result.churn_scale.median
    assert finding.client_id == "C00042" and finding.facts["churn"] == "low"
    assert "(low: below the book's median)" in finding.text
    assert f"rank {result.client.rank} of {result.book_size}" in finding.text


def test_a_one_month_tenure_driver_is_short_against_the_books_median(
    sample_book: ClientBook,
) -> None:
    clients = scoring.churn_risks(sample_book, limit=50).clients
    median = sample_book.frame()["tenure_months"].median()

    client, driver = next(
        (c, d) for c in clients for d in c.drivers if d.feature == "tenure_months" and d.value == 1
    )

    assert (driver.median, driver.level) == (median, "short")
    finding = client.finding(1)
    assert f"tenure 1 month (short, book median {median:g} months): {driver.effect}" in finding.text
    assert finding.facts["tenure_months.level"] == "short"
    assert "tenure 1 month;" not in finding.text  # said once, as a driver


def test_numeric_drivers_have_the_books_median_and_categories_none(
    sample_book: ClientBook,
) -> None:
    frame = sample_book.frame()
    drivers = [d for c in scoring.churn_risks(sample_book, limit=30).clients for d in c.drivers]

    numeric = [d for d in drivers if isinstance(d.value, float)]
    assert numeric and len(numeric) < len(drivers)
    for driver in drivers:
        if isinstance(driver.value, float):
            assert driver.median == frame[driver.feature].median()
            assert driver.level == feature_level(driver.feature, driver.value, driver.median)
        else:
            assert driver.median is None and driver.level is None


def test_a_price_raise_is_called_a_raise_in_words(sample_book: ClientBook) -> None:
    advice = scoring.price_recommendation(sample_book, "C01234")
    impact = scoring.price_change_impact(sample_book, None, 8)
    cut = scoring.price_change_impact(sample_book, None, -5)

    change = advice.recommendation.change_pct
    move = price_move(change)
    finding = advice.findings[0]
    assert finding.client_id == "C01234" and finding.facts["price"] == move
    if move != "keep":
        assert f"price {move} of {abs(change):.1f}%" in finding.text
    assert impact.findings[0].text.startswith("Price raise of 8.0% in segment")
    # the churn model is monotone in the price: a raise cannot lower churn, a cut cannot raise it
    assert impact.findings[0].facts == {"price": "raise", "churn.change": "raises"}
    assert cut.findings[0].facts == {"price": "cut", "churn.change": "lowers"}
    assert cut.findings[0].text.startswith("Price cut of 5.0%")


def test_billing_reasons_say_higher_or_lower_than_typical(plain_book: ClientBook) -> None:
    top = scoring.billing_anomalies(plain_book, limit=1)

    finding = top.findings[1]
    typical = next(r.typical for r in top.anomalies[0].reasons if r.feature == "monthly_charges")
    assert finding.client_id == "K0007"
    assert f"monthly_charges $400.00 vs typical ${typical:.2f} (higher)" in finding.text
    assert finding.facts["monthly_charges.level"] == "high"


def test_findings_travel_in_the_json_of_a_result(sample_book: ClientBook) -> None:
    result = scoring.churn_risks(sample_book, limit=2)

    dumped = result.model_dump(mode="json")

    assert [Finding.model_validate(f) for f in dumped["findings"]] == result.findings
    assert ChurnRisks.model_validate(dumped) == result


@pytest.mark.parametrize(
    ("change", "move"), [(5.0, "raise"), (-0.2, "cut"), (0.04, "keep"), (0.0, "keep")]
)
def test_price_moves_in_words(change: float, move: str) -> None:
    assert price_move(change) == move


@pytest.mark.parametrize(
    ("now", "then", "words", "change"),
    [
        (0.0123, 0.0124, "churn probability unchanged at 1.2% (+0.0 points)", "keeps"),
        (
            0.0116,
            0.0124,
            "rises from 1.2% now to 1.2% at the recommended price (+0.1 points)",
            "raises",
        ),
        (
            0.012,
            0.015,
            "churn probability rises from 1.2% now to 1.5% at the recommended price (+0.3 points)",
            "raises",
        ),
        (
            0.3,
            0.25,
            "falls from 30.0% now to 25.0% at the recommended price (-5.0 points)",
            "lowers",
        ),
    ],
)
def test_a_price_recommendation_says_how_churn_moves_in_words(
    now: float, then: float, words: str, change: str
) -> None:
    recommendation = PriceRecommendation(
        client_id="C00001",
        current_price=50.0,
        recommended_price=52.5,
        change_pct=5.0,
        churn_probability_now=now,
        churn_probability_at_recommended=then,
        churn_risk_change=then - now,
        expected_revenue_now=50 * (1 - now),
        expected_revenue_at_recommended=52.5 * (1 - then),
        expected_revenue_change=52.5 * (1 - then) - 50 * (1 - now),
        expected_revenue_change_pct=1.0,
        retention_elasticity=-0.1,
        max_change=0.15,
        max_churn_increase=None,
        constraint="none",
        grid_size=31,
        price_low=42.5,
        price_high=57.5,
    )
    finding = recommendation_finding(recommendation)
    assert words in finding.text
    assert finding.facts == {"price": "raise", "churn.change": change}


@pytest.mark.parametrize(
    ("change", "words"), [(0.04, "keeps"), (-0.04, "keeps"), (0.08, "raises"), (-44.4, "lowers")]
)
def test_churn_changes_in_words_as_printed(change: float, words: str) -> None:
    assert churn_change(change) == words


def test_feature_levels_against_the_median() -> None:
    assert feature_level("tenure_months", 1, 29) == "short"
    assert feature_level("tenure_months", 70, 29) == "long"
    assert feature_level("monthly_charges", 118.75, 70.35) == "high"
    assert feature_level("senior_citizen", 0, 0) == "typical"


def test_churn_scale_levels() -> None:
    scale = ChurnScale(clients=10, median=0.151, top_decile=0.653)

    levels = [scale.level(p) for p in (0.023, 0.151, 0.5, 0.653, 0.873)]

    assert levels == ["low", "moderate", "moderate", "high", "high"]
