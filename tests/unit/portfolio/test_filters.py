import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from aimesh.errors import InvalidInputError
from aimesh.portfolio.book import BookInfo
from aimesh.portfolio.filters import (
    Filters,
    Range,
    apply_filters,
    check_filters,
    describe_filterable,
    format_filters,
    mentioned_columns,
    parse_filter,
    parse_filters,
)
from tests.helpers.books import book_info


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "churned": [1.0, 0.0, np.nan, 0.0, 1.0],
            "name": ["Acme", "Bolt", "Cogs", "Dyne", "Echo"],
            "monthly_charges": [20.0, 55.5, 80.0, np.nan, 99.0],
            "tenure_months": [1.0, 12.0, 24.0, 36.0, 72.0],
            "contract": ["Month-to-month", "One year", "Two year", np.nan, "One year"],
            "city": [f"City {i}" for i in range(5)],
        },
        index=pd.Index(["A1", "A2", "A3", "A4", "A5"], name="client_id"),
    )


@pytest.fixture(scope="module")
def info(frame: pd.DataFrame) -> BookInfo:
    # "city" has 5 values: a category here; make it text as the importer would with more
    info = book_info(frame)
    city = info.column("city")
    assert city is not None
    city.type, city.values = "text", None
    return info


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contract=Month-to-month", ("contract", "Month-to-month")),
        (" contract = One year|Two year ", ("contract", ["One year", "Two year"])),
        ("tenure_months=..12", ("tenure_months", Range(max=12))),
        ("tenure_months=24..", ("tenure_months", Range(min=24))),
        ("monthly_charges=50.5..80", ("monthly_charges", Range(min=50.5, max=80))),
        ("churned=1", ("churned", "1")),
        ("note=a=b", ("note", "a=b")),
        ("plan=v1..v2", ("plan", "v1..v2")),  # not numbers: a value, not a range
    ],
)
def test_parse_filter_reads_the_text_syntax(text: str, expected: tuple) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", ["contract", "=x", "contract=", "contract=a||b", "x=|"])
def test_parse_filter_rejects_malformed_text(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_filter(text)

    assert caught.value.field == "filter"
    assert "column=lo..hi" in str(caught.value)


def test_parse_filters_refuses_a_column_twice() -> None:
    with pytest.raises(InvalidInputError, match="filtered twice"):
        parse_filters(["contract=One year", "contract=Two year"])


def test_format_filters_is_the_inverse_of_parse_filters() -> None:
    texts = ["contract=One year|Two year", "tenure_months=..12", "monthly_charges=50.5..80"]

    assert format_filters(parse_filters(texts)) == ", ".join(texts)


def test_filters_validate_json_an_llm_writes() -> None:
    adapter = TypeAdapter(Filters)

    filters = adapter.validate_python(
        {"tenure_months": {"max": 12}, "contract": ["One year", "Two year"], "churned": 0}
    )

    assert filters == {
        "tenure_months": Range(max=12),
        "contract": ["One year", "Two year"],
        "churned": 0.0,
    }
    assert "min" in str(adapter.json_schema())
    with pytest.raises(ValueError, match="extra"):
        adapter.validate_python({"tenure_months": {"max": 12, "below": 3}})


def test_check_filters_normalises_names_and_category_values(info: BookInfo) -> None:
    conditions = check_filters(
        {"Contract": ["one YEAR", "two year"], "tenure_months": "12", "city": "city 1"}, info
    )

    assert [(c.column, c.value) for c in conditions] == [
        ("contract", ["One year", "Two year"]),
        ("tenure_months", 12.0),
        ("city", "city 1"),
    ]


@pytest.mark.parametrize(
    ("filters", "field", "message"),
    [
        ({"plan": "x"}, "filters.plan", "one of: churned, monthly_charges, tenure_months, "),
        ({"name": "Acme"}, "filters.name", "no filterable column"),
        ({"client_id": "A1"}, "filters.client_id", "no filterable column"),
        ({"contract": "Three year"}, "filters.contract", "Month-to-month, One year, Two year"),
        ({"contract": Range(min=1)}, "filters.contract", "a range on category column"),
        ({"city": Range(max=3)}, "filters.city", "a range on text column"),
        ({"tenure_months": "long"}, "filters.tenure_months", "observed 1..72"),
        ({"tenure_months": Range(min=24, max=12)}, "filters.tenure_months", "min 24 is above"),
        ({"tenure_months": Range()}, "filters.tenure_months", "without min or max"),
        ({"contract": []}, "filters.contract", "empty list"),
        ({"monthly_charges": "nan"}, "filters.monthly_charges", "is not a number"),
    ],
)
def test_check_filters_names_the_field_and_what_is_allowed(
    info: BookInfo, filters: Filters, field: str, message: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_filters(filters, info)

    assert caught.value.field == field
    assert message in str(caught.value)


def test_the_unknown_column_error_lists_only_filterable_columns(info: BookInfo) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_filters({"plan": "x"}, info)

    assert caught.value.allowed == (
        "one of: churned, monthly_charges, tenure_months, contract, city"
    )


def test_apply_filters_keeps_the_matching_clients(frame: pd.DataFrame, info: BookInfo) -> None:
    def kept(filters: Filters) -> list[str]:
        return list(frame.index[apply_filters(frame, check_filters(filters, info))])

    assert kept({}) == ["A1", "A2", "A3", "A4", "A5"]
    assert kept({"contract": "one year"}) == ["A2", "A5"]
    assert kept({"contract": ["One year", "Two year"], "tenure_months": Range(max=24)}) == [
        "A2",
        "A3",
    ]
    assert kept({"monthly_charges": Range(min=55.5)}) == ["A2", "A3", "A5"]  # NaN never kept
    assert kept({"churned": 0}) == ["A2", "A4"]
    assert kept({"tenure_months": [1, 72]}) == ["A1", "A5"]
    assert kept({"city": "CITY 3"}) == ["A4"]


def test_describe_filterable_is_one_compact_line(info: BookInfo) -> None:
    assert describe_filterable(info) == (
        "churned: 0..1; monthly_charges: 20..99; tenure_months: 1..72; "
        "contract: Month-to-month|One year|Two year; city: text"
    )


def test_describe_filterable_shortens_long_categories() -> None:
    frame = pd.DataFrame({"region": [f"R{i:02d}" for i in range(30)]})

    text = describe_filterable(book_info(frame))

    assert text.startswith("region: R00|R01|") and text.endswith("R19|... (30 values)")


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("Which clients on a two-year contract will churn?", ["contract"]),
        ("Which of our clients are most likely to churn?", []),
        (
            "Clients with long tenure months and high monthly charges",
            ["monthly_charges", "tenure_months"],
        ),
        ("Who pays the most? Billing anomalies", []),  # "billing" alone names no column
        ("Rank the month-to-month ones", ["contract"]),
    ],
)
def test_a_question_names_the_columns_of_its_words(
    info: BookInfo, question: str, named: list[str]
) -> None:
    assert [c.name for c in mentioned_columns(info, question)] == named
