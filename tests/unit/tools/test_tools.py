from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from aimesh.context import Context
from aimesh.errors import InvalidInputError, UnknownClientError
from aimesh.portfolio.scoring import churn_scores
from aimesh.tools.billing import billing_anomalies, client_billing_check
from aimesh.tools.churn import churn_summary_tool, client_churn_risk, top_churn_risks
from aimesh.tools.pricing import price_change_impact_tool, recommend_price_tool


@pytest.fixture(scope="module")
def runtime(sample):
    return SimpleNamespace(context=Context(book=sample))


def test_top_churn_risks_ranks_by_the_models_probability(runtime, sample):
    text, result = top_churn_risks.func(runtime, limit=5, offset=0)
    clients = result["clients"]
    assert [c["rank"] for c in clients] == [1, 2, 3, 4, 5]
    current = sample.frame().churned != 1
    assert [c["churn_probability"] for c in clients] == pytest.approx(
        list(churn_scores(sample)[current].sort_values(ascending=False).iloc[:5])
    )
    assert all(len(c["drivers"]) == 3 for c in clients)
    assert result["model_version"] == sample.churn().card.version
    assert result["sample"] is True and result["book_version"] == 0
    assert "sample data" in text
    for c in clients:
        assert c["client_id"] in text
        assert f"{c['churn_probability'] * 100:.1f}%" in text


def test_a_segment_lists_only_its_clients(runtime, sample):
    segment = ["internet_service=Fiber optic", "tech_support=No"]
    _, result = top_churn_risks.func(runtime, limit=25, offset=0, filters=segment)
    frame = sample.frame()
    kept = frame[
        (frame.internet_service == "Fiber optic")
        & (frame.tech_support == "No")
        & (frame.churned != 1)
    ]
    assert result["matched"] == len(kept)
    assert {c["client_id"] for c in result["clients"]} <= set(kept.index)
    top = churn_scores(sample)[kept.index].sort_values(ascending=False, kind="stable")
    assert [c["client_id"] for c in result["clients"]] == list(top.index[:25])


def test_a_filter_on_an_unknown_column_names_the_columns_allowed(runtime):
    with pytest.raises(InvalidInputError, match="contract"):
        top_churn_risks.func(runtime, limit=5, offset=0, filters=["plan=Gold"])


def test_churn_summary_sums_the_models_probabilities(runtime, sample):
    _, result = churn_summary_tool.func(runtime, filters=["payment_method=Electronic check"])
    frame = sample.frame()
    ids = frame.index[(frame.payment_method == "Electronic check") & (frame.churned != 1)]
    probability = churn_scores(sample)[ids]
    assert result["matched"] == len(ids)
    assert result["expected_churners"] == pytest.approx(probability.sum())
    revenue = (probability * frame.loc[ids, "monthly_charges"]).sum()
    assert result["monthly_revenue_at_risk"] == pytest.approx(revenue)


def test_next_page_continues_the_ranking(runtime):
    _, first = top_churn_risks.func(runtime, limit=5, offset=0)
    _, second = top_churn_risks.func(runtime, limit=5, offset=5)
    assert [c["rank"] for c in second["clients"]] == [6, 7, 8, 9, 10]
    assert first["clients"][-1]["churn_probability"] >= second["clients"][0]["churn_probability"]
    assert not {c["client_id"] for c in first["clients"]} & {
        c["client_id"] for c in second["clients"]
    }


def test_client_churn_risk_matches_the_ranking(runtime):
    _, top = top_churn_risks.func(runtime, limit=1, offset=0)
    best = top["clients"][0]
    _, one = client_churn_risk.func(runtime, client_id=best["client_id"].lower())
    assert one["client"]["rank"] == 1
    assert one["client"]["churn_probability"] == pytest.approx(best["churn_probability"])


def test_unknown_client_is_a_clear_error(runtime):
    with pytest.raises(UnknownClientError, match="C09999"):
        client_churn_risk.func(runtime, client_id="C09999")


def test_billing_anomalies_are_ranked_with_reasons(runtime):
    text, result = billing_anomalies.func(runtime, limit=3, offset=0)
    anomalies = result["anomalies"]
    assert [a["rank"] for a in anomalies] == [1, 2, 3]
    scores = [a["score"] for a in anomalies]
    assert scores == sorted(scores, reverse=True)
    assert all(a["reasons"] for a in anomalies)
    assert result["provenance"]["model"] == "billing-anomaly"
    assert all(a["client_id"] in text for a in anomalies)


def test_one_clients_billing_check_names_its_rank_and_verdict(runtime):
    top = billing_anomalies.func(runtime, limit=1, offset=0)[1]["anomalies"][0]
    text, result = client_billing_check.func(runtime, client_id=top["client_id"].lower())
    assert result["anomaly"] == top
    assert "billing out of line: anomalous" in text
    with pytest.raises(UnknownClientError, match="C09999"):
        client_billing_check.func(runtime, client_id="C09999")


def test_price_recommendation_keeps_churn_risk_by_default(runtime):
    text, result = recommend_price_tool.func(runtime, client_id="C01234")
    r = result["recommendation"]
    assert r["client_id"] == "C01234"
    assert r["churn_risk_change"] <= 1e-12
    assert abs(r["change_pct"]) <= 15 + 1e-9
    assert r["expected_revenue_at_recommended"] >= r["expected_revenue_now"] - 1e-9
    assert "churn risk may not rise" in text


def test_a_price_raise_lowers_no_clients_retention(runtime):
    _, result = price_change_impact_tool.func(runtime, change_pct=5, filters=["contract=Two year"])
    assert result["churners_after"] >= result["churners_before"]
    assert result["change_pct"] == 5


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        (top_churn_risks, {"limit": 0}),
        (top_churn_risks, {"limit": 26}),
        (top_churn_risks, {"offset": -1}),
        (billing_anomalies, {"limit": "many"}),
        (client_churn_risk, {"client_id": ""}),
        (client_churn_risk, {"client_id": "x" * 65}),
        (recommend_price_tool, {"client_id": "C01234", "max_change_pct": 80}),
        (price_change_impact_tool, {"change_pct": 70}),
    ],
)
def test_out_of_range_arguments_are_rejected_by_the_schema(tool, args):
    with pytest.raises(ValidationError):
        tool.tool_call_schema.model_validate(args)
