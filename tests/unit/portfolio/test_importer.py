"""Mapping and typing a raw table into a book: fields, features, label, and every refusal."""

import io

import numpy as np
import pandas as pd
import pytest

from aimesh.config import REPO_DATA_DIR
from aimesh.errors import DataFileError, InvalidInputError
from aimesh.portfolio.book import MAX_CATEGORIES, Column, Label
from aimesh.portfolio.importer import FIELDS, build_book, check_mapping, parse_mapping
from aimesh.portfolio.reader import read_table, rows_table

MAP = {"client_id": "Customer", "churned": "Left?", "monthly_charges": "Monthly"}


def raw(text: str) -> pd.DataFrame:
    return read_table(text.encode(), "book.csv", max_rows=1000)


def refusal(table: pd.DataFrame, mapping: dict[str, str]) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        build_book(table, mapping)
    return caught.value


BOOK = """Customer,Name,Left?,Monthly,Plan,Seats
C1,Ann,yes,"$1,234.50",Gold,3
 C2 ,,No,29.85,Basic,
C3,Bob,,0,Gold,12
"""


def test_a_book_is_typed_and_ordered() -> None:
    table = raw(BOOK)
    mapping = {**MAP, "name": "Name"}

    frame, columns, label = build_book(table, mapping)

    assert frame.index.name == "client_id"
    assert list(frame.index) == ["C1", "C2", "C3"]
    assert list(frame.columns) == ["name", "churned", "monthly_charges", "Plan", "Seats"]
    assert frame["churned"].tolist()[:2] == [1.0, 0.0] and np.isnan(frame["churned"].iloc[2])
    assert frame["monthly_charges"].tolist() == [1234.5, 29.85, 0.0]
    assert frame["name"].iloc[0] == "Ann" and pd.isna(frame["name"].iloc[1])
    assert frame["Plan"].tolist() == ["Gold", "Basic", "Gold"]
    assert frame["Seats"].dtype == np.float64 and np.isnan(frame["Seats"].iloc[1])
    assert label == Label(column="Left?", positives=1, negatives=1)
    assert columns == [
        Column(name="client_id", type="text", field="client_id", source="Customer"),
        Column(name="name", type="text", field="name", source="Name", missing=1),
        Column(
            name="churned", type="number", field="churned", source="Left?", min=0, max=1, missing=1
        ),
        Column(
            name="monthly_charges",
            type="number",
            field="monthly_charges",
            source="Monthly",
            min=0,
            max=1234.5,
        ),
        Column(name="Plan", type="category", source="Plan", values=["Basic", "Gold"]),
        Column(name="Seats", type="number", source="Seats", min=3, max=12, missing=1),
    ]


def test_a_book_without_churned_has_no_label() -> None:
    frame, _, label = build_book(raw("id,plan\nC1,Gold\n"), {"client_id": "id"})

    assert label is None
    assert list(frame.columns) == ["plan"]


def test_a_book_may_be_ids_alone() -> None:
    frame, columns, _ = build_book(raw("id\nC1\nC2\n"), {"client_id": "id"})

    assert frame.shape == (2, 0) and list(frame.index) == ["C1", "C2"]
    assert [column.name for column in columns] == ["client_id"]


def test_many_distinct_values_make_a_text_column() -> None:
    rows = [
        {"id": f"C{i}", "note": f"note {i}", "plan": f"P{i % MAX_CATEGORIES}"} for i in range(60)
    ]

    _, columns, _ = build_book(rows_table(rows, max_rows=100), {"client_id": "id"})

    types = {column.name: column.type for column in columns}
    assert types == {"client_id": "text", "note": "text", "plan": "category"}
    plan = next(column for column in columns if column.name == "plan")
    assert plan.values == sorted(f"P{i}" for i in range(MAX_CATEGORIES))


def test_csv_parquet_and_json_rows_give_the_same_book() -> None:
    data = pd.DataFrame(
        {
            "Customer": ["C1", "C2", "C3"],
            "Left?": ["yes", "no", None],
            "Monthly": [10.5, None, 30.0],
            "Seats": [3, 4, 5],
            "Plan": ["Gold", None, "Basic"],
        }
    )
    parquet = io.BytesIO()
    data.to_parquet(parquet, index=False)
    tables = [
        read_table(data.to_csv(index=False).encode(), "a.csv", max_rows=10),
        read_table(parquet.getvalue(), "a.parquet", max_rows=10),
        rows_table(data.replace({np.nan: None}).to_dict("records"), max_rows=10),
    ]

    books = [build_book(table, MAP) for table in tables]

    for frame, columns, label in books[1:]:
        pd.testing.assert_frame_equal(frame, books[0][0])
        assert (columns, label) == books[0][1:]


def test_the_telco_file_with_its_own_ids_and_names() -> None:
    table = read_table((REPO_DATA_DIR / "telco_churn.csv").read_bytes(), None, max_rows=10_000)
    table.insert(0, "Customer ID", [f"{i:04d}-TEL" for i in range(len(table))])
    table = table.rename(columns={"churn": "Churn", "monthly_charges": "MonthlyCharges"})
    mapping = parse_mapping(
        ["client_id=Customer ID", "churned=Churn", "monthly_charges=MonthlyCharges"]
        + ["tenure_months=tenure", "total_charges=total_charges"]
    )

    frame, columns, label = build_book(table, mapping)

    assert label == Label(column="Churn", positives=1869, negatives=5174)
    assert len(frame) == 7043 and frame.index[0] == "0000-TEL"
    total = next(column for column in columns if column.name == "total_charges")
    assert (total.missing, total.source) == (11, "total_charges")  # blanks in the file
    contract = next(column for column in columns if column.name == "contract")
    assert contract.values == ["Month-to-month", "One year", "Two year"]


# --- the mapping --------------------------------------------------------------------------


def test_parse_mapping_reads_field_equals_column() -> None:
    mapping = parse_mapping(["churned = Left?", "client_id=Customer ID"])

    assert mapping == {"client_id": "Customer ID", "churned": "Left?"}
    assert list(mapping) == ["client_id", "churned"]  # the book's order


@pytest.mark.parametrize(
    ("items", "problem", "allowed"),
    [
        (["client_id"], "'client_id' has no '='", "FIELD=COLUMN"),
        (
            ["client_id=id", "client_id=other"],
            "field 'client_id' is mapped twice ('id' and 'other')",
            "each field once",
        ),
        (["client_id=id", "churn=Left"], "unknown field(s) ['churn']", ", ".join(FIELDS)),
        (["churned=Left"], "client_id is not mapped", "client_id=COLUMN"),
        (["client_id= "], "field 'client_id' is mapped to no column", "FIELD=COLUMN"),
        (
            ["client_id=id", "name=id"],
            "fields 'client_id' and 'name' are both mapped to column 'id'",
            "one field per column",
        ),
    ],
)
def test_bad_mappings_are_refused(items: list[str], problem: str, allowed: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_mapping(items)

    assert caught.value.field == "map"
    assert caught.value.problem.startswith(problem)
    assert caught.value.allowed == allowed


def test_check_mapping_is_what_build_book_applies() -> None:
    assert check_mapping({"client_id": " id "}) == {"client_id": "id"}
    error = refusal(raw("id\nC1\n"), {"name": "id"})

    assert (error.field, error.problem) == (
        "map",
        "client_id is not mapped: the book needs the column of your own client ids",
    )


def test_a_mapped_column_the_file_lacks_lists_the_columns() -> None:
    error = refusal(raw(BOOK), {**MAP, "tenure_months": "Tenure"})

    assert error.field == "map"
    assert error.problem == "tenure_months='Tenure': the file has no column 'Tenure'"
    assert error.allowed == (
        "a column of the file: 'Customer', 'Name', 'Left?', 'Monthly', 'Plan', 'Seats'"
    )


# --- columns and ids ----------------------------------------------------------------------


def test_an_unmapped_column_named_like_a_field_is_refused() -> None:
    error = refusal(raw("id,churned\nC1,yes\n"), {"client_id": "id"})

    assert error.field == "columns"
    assert error.problem == "column 'churned' is not mapped but is named like the field 'churned'"
    assert error.allowed == "map it (--map churned=churned) or rename the column"


def test_a_column_without_a_name_is_refused() -> None:
    error = refusal(raw("id,,plan\nC1,x,Gold\n"), {"client_id": "id"})

    assert (error.field, error.problem) == ("columns", "column 2 of the file has no name")


@pytest.mark.parametrize(
    ("ids", "problem"),
    [
        (["C1", " ", "C3"], "column 'id' has an empty id in row 2"),
        (["C1", "C2", "x" * 65], f"column 'id' has the id {'x' * 65!r} in row 3"),
        (["C1", "C\x072", "C3"], "column 'id' has the id 'C\\x072' in row 2"),
        (["C1", "C2", "C3", " C2"], "column 'id' has the id 'C2' in rows 2 and 4"),
    ],
)
def test_bad_ids_name_their_rows(ids: list[str], problem: str) -> None:
    table = pd.DataFrame({"id": ids, "plan": "Gold"}, dtype=str)

    error = refusal(table, {"client_id": "id"})

    assert isinstance(error, DataFileError)
    assert (error.field, error.problem) == ("client_id", problem)


def test_ids_are_never_numbered_by_row() -> None:
    frame, _, _ = build_book(raw("n,id\n1,0042\n2,17\n"), {"client_id": "id"})

    assert list(frame.index) == ["0042", "17"]
    assert frame["n"].tolist() == [1.0, 2.0]


# --- churned ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        ["Yes", "no", "YES"],
        ["true", "False", "TRUE"],
        ["1", "0", "1"],
        ["1.0", "0.0", "1.0"],
        ["y", "N", "Y"],
        ["Churned", "Stayed", "churned"],
    ],
)
def test_churned_accepts_the_usual_outcome_labels(labels: list[str]) -> None:
    table = pd.DataFrame({"id": ["C1", "C2", "C3", "C4"], "out": [*labels, ""]}, dtype=str)

    frame, _, label = build_book(table, {"client_id": "id", "churned": "out"})

    assert frame["churned"].tolist()[:3] == [1.0, 0.0, 1.0]
    assert np.isnan(frame["churned"].iloc[3])
    assert label == Label(column="out", positives=2, negatives=1)


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        (
            ["yes", "maybe", "no", "later"],
            "column 'out' has values that are not outcomes: 'later', 'maybe'",
        ),
        (["yes", "", "Yes", "YES"], "column 'out' has one class only ('yes')"),
        (["", " ", "", ""], "column 'out' has no outcomes"),
        (["yes", "no", "true", "false"], "column 'out' has 4 values"),
    ],
)
def test_bad_outcomes_are_refused(labels: list[str], problem: str) -> None:
    table = pd.DataFrame({"id": ["C1", "C2", "C3", "C4"], "out": labels}, dtype=str)

    error = refusal(table, {"client_id": "id", "churned": "out"})

    assert error.field == "churned"
    assert error.problem.startswith(problem)
    assert error.allowed is not None and "both churned and stayed rows" in error.allowed


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [("29.85", 29.85), (" 1e3 ", 1000.0), ("$1,234.50", 1234.5), ("£12", 12.0), ("-$5", -5.0)],
)
def test_total_charges_parse_plain_and_currency_numbers(text: str, number: float) -> None:
    table = pd.DataFrame({"id": ["C1", "C2"], "total": [text, ""]}, dtype=str)

    frame, _, _ = build_book(table, {"client_id": "id", "total_charges": "total"})

    assert frame["total_charges"].iloc[0] == number
    assert np.isnan(frame["total_charges"].iloc[1])


@pytest.mark.parametrize(
    ("field", "values", "problem"),
    [
        ("monthly_charges", ["10", "ten", "x"], "column 'v' has 'ten' in row 2: not a number"),
        ("total_charges", ["10", "1,5", "3"], "column 'v' has '1,5' in row 2: not a number"),
        ("tenure_months", ["10", "12,34", "3"], "column 'v' has '12,34' in row 2: not a number"),
        ("total_charges", ["10", "inf", "3"], "column 'v' has 'inf' in row 2: not a number"),
        ("monthly_charges", ["10", "3", "-1"], "column 'v' has '-1' in row 3: negative"),
        ("tenure_months", ["-2", "3", "1"], "column 'v' has '-2' in row 1: negative"),
    ],
)
def test_bad_numbers_name_the_column_and_row(field: str, values: list[str], problem: str) -> None:
    table = pd.DataFrame({"id": ["C1", "C2", "C3"], "v": values}, dtype=str)

    error = refusal(table, {"client_id": "id", field: "v"})

    assert isinstance(error, DataFileError)
    assert (error.field, error.problem) == (field, problem)


def test_an_infinite_feature_value_is_refused_naming_column_and_row() -> None:
    raw = pd.DataFrame({"id": ["a", "b", "c"], "usage": ["1.5", "1e999", "2"]})
    with pytest.raises(DataFileError, match=r"'usage' has '1e999' in row 2: not finite"):
        build_book(raw, {"client_id": "id"})


def test_an_id_with_a_slash_is_refused_as_it_cannot_be_addressed() -> None:
    raw = pd.DataFrame({"id": ["a", "b/1"], "usage": ["1", "2"]})
    with pytest.raises(DataFileError, match="row 2"):
        build_book(raw, {"client_id": "id"})
