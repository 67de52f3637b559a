import pytest

from aimesh.graphs.faithfulness import clauses, faithfulness_problems
from aimesh.portfolio.wording import Finding

SAFE = Finding(
    client_id="C00042",
    text="C00042: churn probability 2.3% (low: below the book's median), rank 5120 of 7043; "
    "drivers: contract Two year: lowers churn risk; tenure 70 months (long, book median 29 "
    "months): lowers churn risk.",
    facts={
        "churn": "low",
        "contract": "lowers",
        "tenure_months": "lowers",
        "tenure_months.level": "long",
    },
)
RISKY = Finding(
    client_id="C00007",
    text="C00007: churn probability 87.3% (high: top 10% of the book), rank 1 of 5174; "
    "$70.70/month; drivers: tenure 1 month (short, book median 29 months): raises churn "
    "risk; contract Month-to-month: raises churn risk.",
    facts={
        "churn": "high",
        "tenure_months": "raises",
        "tenure_months.level": "short",
        "contract": "raises",
    },
)
SCALE = Finding(
    text="Churn levels compare with the book's 5174 current clients: median 15.1%, top 10% "
    "from 65.3%."
)
SOURCE = Finding(text="Source: churn model churn-v1 on the sample data (not your client book).")
CHURN = [SAFE, RISKY, SCALE, SOURCE]
PRICE = [
    Finding(
        client_id="C01234",
        text="C01234: recommended price $80.00/month, price raise of 7.1% from $74.70/month "
        "(searched +-15.0%, churn risk may not rise); churn probability unchanged at 12.0% "
        "(+0.0 points).",
        facts={"price": "raise", "churn.change": "keeps"},
    ),
    SOURCE,
]
IMPACT = [
    Finding(
        text="A 5.0% price raise in the whole book (5174 clients): expected monthly revenue "
        "$100.00/month now, $104.00/month after.",
        facts={"price": "raise"},
    ),
    SOURCE,
]
BOOK = {"C00007", "C00042", "C00100", "C01234"}


def problems(answer: str, findings: list[Finding] = CHURN, cited=()) -> list[str]:
    return faithfulness_problems(answer, findings, cited, BOOK)


def test_the_findings_quoted_as_written_have_no_problem():
    for findings in (CHURN, PRICE, IMPACT):
        assert problems("\n".join(f.text for f in findings), findings) == []


def test_a_2_3_percent_churn_probability_called_high_is_a_problem():
    bad = problems("C00042 has a 2.3% churn probability, a high likelihood of churn.")

    assert bad == ["you called C00042's churn risk high; the finding says it is low for this book."]
    assert problems("C00042 has a 2.3% churn probability, which is low.") == []


def test_a_two_year_contract_and_70_months_of_tenure_said_to_raise_risk_is_a_problem():
    bad = problems("C00042's two-year contract and 70 months of tenure raise its churn risk.")

    assert bad == [
        "you wrote that tenure raises C00042's churn risk; the finding says tenure (long): "
        "lowers churn risk."
    ]
    assert problems("C00042's two-year contract and 70 months of tenure lower its risk.") == []


def test_high_tenure_for_a_one_month_client_is_a_problem():
    bad = problems("C00007 has high tenure (1 month) and a month-to-month contract.")

    assert bad == ["you called C00007's tenure high; the finding says short."]
    assert problems("C00007 has a short tenure of 1 month, which raises its churn risk.") == []


def test_a_figure_of_another_client_is_a_problem():
    bad = problems("C00042 has an 87.3% churn probability.")

    assert bad == ["you wrote 87.3 about C00042, but it is a figure of C00007's finding."]
    assert problems("C00007 has an 87.3% churn probability; the book's median is 15.1%.") == []


def test_a_sentence_without_an_id_is_about_the_client_named_before_it_on_its_line():
    bad = problems("C00007 is first. Its churn probability is 2.3%, which is low.")

    assert "you wrote 2.3 about C00007, but it is a figure of C00042's finding." in bad
    assert "you called C00007's churn risk low; the finding says it is high for this book." in bad


def test_a_client_nobody_scored_is_a_problem_unless_the_question_names_it():
    answer = "C00007 has a high churn risk (87.3%); C00100 is also at risk."

    assert problems(answer) == [
        "you named C00100, but no result covers C00100: name only clients that appear in the "
        "results."
    ]
    assert problems(answer, cited=["Is C00100 at risk too?"]) == []


@pytest.mark.parametrize(
    ("answer", "word"),
    [
        ("I recommend a 7.1% price reduction for C01234.", "reduction"),
        ("Lower the price of C01234 to $80.00/month.", "lower"),
    ],
)
def test_a_price_raise_described_as_a_reduction_is_a_problem(answer, word):
    assert problems(answer, PRICE) == [
        f"you described the price change for C01234 with '{word}' (a cut); the finding says raise."
    ]
    assert problems("I recommend a 7.1% price raise for C01234, to $80.00/month.", PRICE) == []
    assert problems("Raising the price keeps its churn risk at 12.0%.", PRICE) == []


@pytest.mark.parametrize(
    ("answer", "word"),
    [
        (
            "The change brings a 1.2% decrease in churn probability, from 12.0% to 12.0%.",
            "decrease",
        ),
        ("At $80.00/month C01234's churn risk would increase to 12.0%.", "increase"),
        ("C01234's churn probability decreases from 12.0% to 12.0%.", "decreases"),
        ("C01234's churn probability falls to 12.0%.", "falls"),
    ],
)
def test_a_churn_change_the_price_finding_does_not_show_is_a_problem(answer, word):
    assert problems(answer, PRICE) == [
        f"you wrote '{word}' of C01234's churn risk; the finding says the price change leaves "
        "it unchanged."
    ]


@pytest.mark.parametrize(
    "answer",
    [
        "Raising the price of C01234 to $80.00/month would not increase its churn risk.",
        "The 7.1% price increase leaves churn risk at 12.0%.",
        "The price for C01234 without raising its churn risk is a 7.1% increase to $80.00.",
        "The recommended 7.1% raise keeps churn risk at 12.0%.",
        "Expected revenue rises to $80.00/month while churn risk stays at 12.0%.",
        "C01234 gets a 7.1% raise with no increase in churn risk.",
        "A 7.1% raise for C01234 without churn risk rising.",
        "At $80.00/month C01234's churn risk cannot rise.",
    ],
)
def test_a_price_or_revenue_move_beside_churn_words_is_no_churn_claim(answer):
    assert problems(answer, PRICE) == []


def test_fewer_churners_after_a_price_raise_that_adds_some_is_a_problem():
    impact = [
        Finding(
            text="Price raise of 10.0% in the whole book: expected churners 920.3 now, 973.8 "
            "after (+53.6).",
            facts={"price": "raise", "churn.change": "raises"},
        )
    ]
    answer = "The expected churners would decrease by 53.6, to 973.8 clients."
    assert problems(answer, impact) == [
        "you wrote 'decrease' of the segment's churn risk; the finding says the price change "
        "raises it."
    ]


def test_a_segments_price_raise_described_as_a_cut_is_a_problem():
    assert problems("Cutting prices by 5.0% would bring $104.00/month.", IMPACT) == [
        "you described the price change for the segment with 'cutting' (a cut); the finding "
        "says raise."
    ]


def test_clauses_are_cut_at_each_client_id():
    assert clauses("C00007 is high, C00042 is low. Both are clients.\nAnd more.", BOOK) == [
        ("C00007", "C00007 is high, ", False),
        ("C00042", "C00042 is low.", False),
        ("C00042", "Both are clients.", False),
        (None, "And more.", True),
    ]


def test_figures_of_two_clients_in_one_sentence_are_nobodys_alone():
    assert [c[2] for c in clauses("C00007 and C00042 have 81.2% and 2.3%.", BOOK)] == [False, False]


def test_figures_after_a_sentence_naming_several_clients_are_theirs_respectively():
    answer = "The riskiest are C00042 and C00007. Their probabilities are 2.3% and 87.3%."
    assert problems(answer) == []
    assert problems("C00042 is safest. Its probability is 87.3%.") == [
        "you wrote 87.3 about C00042, but it is a figure of C00007's finding."
    ]


def test_a_clients_figure_in_a_sentence_about_no_client_is_a_problem():
    answer = "The top 10% of the book have a churn probability of 87.3%. C00007 leads."
    assert problems(answer) == [
        "you wrote 87.3 about the segment, but it is a figure of C00007's finding."
    ]
    assert problems("The median is 15.1%; C00007 has 87.3%.") == []


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("C00042 is billed out of line with its services.", "out of line"),
        ("C00042's billing is anomalous: its score is 0.471.", "out of line"),
    ],
)
def test_a_client_in_line_called_out_of_line_is_a_problem(answer, said):
    checked = [
        Finding(
            client_id="C00042",
            text="C00042: anomaly score 0.471, rank 3324; billing in line: not anomalous.",
            facts={"billing": "in line"},
        )
    ]
    assert problems(answer, checked) == [
        f"you called C00042's billing {said}; the finding says in line."
    ]
    for fine in ["C00042 is billed in line: not anomalous.", "C00042 is not out of line."]:
        assert problems(fine, checked) == []
    flagged = [checked[0].model_copy(update={"facts": {"billing": "out of line"}})]
    assert problems("C00042 is billed correctly.", flagged) == [
        "you called C00042's billing in line; the finding says out of line."
    ]


def test_a_negated_level_is_not_a_claim():
    assert problems("C00042's churn risk is not high.") == []
