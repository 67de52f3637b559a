import pytest

from aimesh.graphs.grounding import numbers_in, ungrounded_numbers

SOURCE = (
    "Clients ranked 1-5 of 7043 by churn probability:\n"
    "#1 C01234: churn probability 87.3%; Month-to-month contract, tenure 2 months, "
    "$1,095.10/month; top drivers: contract=Month-to-month (raises risk).\n"
    "Source: model churn-20261121T140501-ab12cd34 (calibrated LightGBM), sha256 863e369c3a03."
)


def test_numbers_skip_ids_versions_and_list_markers():
    text = "1. C01234 pays $1,095.10 (v2, churn-20261121T140501) and 87.3% risk"
    assert [str(n) for n in numbers_in(text)] == ["1095.10", "87.3"]


@pytest.mark.parametrize(
    "answer",
    [
        "C01234 has an 87.3% churn probability.",
        "C01234 is about 87% likely to churn.",  # rounded
        "Its churn probability is 0.873.",  # fraction of the percentage
        "It pays $1,095.10 a month, $1095.1 exactly, for 2 months.",
        "Ranked 1 of 7,043 clients.",
    ],
)
def test_grounded_answers_pass(answer):
    assert ungrounded_numbers(answer, [SOURCE]) == []


@pytest.mark.parametrize(
    ("answer", "bad"),
    [
        ("C01234 has a 91.2% churn probability.", ["91.2"]),
        ("Raising the price 12% would add $40.00.", ["12", "40.00"]),
        ("It is 88% likely to churn.", ["88"]),  # 87.3 does not round to 88
    ],
)
def test_invented_numbers_are_reported(answer, bad):
    assert ungrounded_numbers(answer, [SOURCE]) == bad


def test_question_numbers_may_be_cited():
    assert ungrounded_numbers("Within 15% as asked.", ["Keep it within 15%", SOURCE]) == []
