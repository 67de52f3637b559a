"""Reading uploads into raw tables of strings: CSV, Parquet and JSON rows, and every refusal."""

import io
from datetime import date

import pandas as pd
import pytest

from aimesh.errors import DataFileError
from aimesh.portfolio.reader import read_table, rows_table


def parquet(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=index)
    return buffer.getvalue()


def refusal(data: bytes, max_rows: int = 100) -> DataFileError:
    with pytest.raises(DataFileError) as caught:
        read_table(data, "book.csv", max_rows=max_rows)
    return caught.value


def test_csv_values_stay_the_text_of_the_file() -> None:
    data = "\ufeffid , Plan,charges\nC1,Gold,007\nC2,,29.85\n".encode()  # BOM, blank in a name

    raw = read_table(data, "book.csv", max_rows=10)

    assert list(raw.columns) == ["id", "Plan", "charges"]
    assert raw.to_dict("list") == {
        "id": ["C1", "C2"],
        "Plan": ["Gold", ""],
        "charges": ["007", "29.85"],
    }
    assert list(raw.index) == [0, 1]


def test_a_short_row_has_empty_values() -> None:
    raw = read_table(b"a,b,c\n1,2\n", None, max_rows=10)

    assert raw.iloc[0].tolist() == ["1", "2", ""]


def test_parquet_values_become_their_text() -> None:
    frame = pd.DataFrame(
        {
            "id": ["C1", "C2", None],
            "count": pd.array([1, None, 3], dtype="Int64"),
            "charges": [29.85, float("nan"), 1e3],
            "active": [True, False, True],
            "since": [date(2024, 1, 31), None, date(2023, 5, 1)],
        }
    )

    raw = read_table(parquet(frame), "book.parquet", max_rows=10)

    assert raw.to_dict("list") == {
        "id": ["C1", "C2", ""],
        "count": ["1", "", "3"],
        "charges": ["29.85", "", "1000.0"],
        "active": ["true", "false", "true"],
        "since": ["2024-01-31", "", "2023-05-01"],
    }


def test_a_pandas_index_stored_in_parquet_becomes_a_column() -> None:
    frame = pd.DataFrame({"plan": ["Gold", "Basic"]}, index=pd.Index(["C1", "C2"], name="id"))

    raw = read_table(parquet(frame, index=True), None, max_rows=10)

    assert raw.to_dict("list") == {"id": ["C1", "C2"], "plan": ["Gold", "Basic"]}


def test_csv_and_parquet_of_the_same_data_give_the_same_table() -> None:
    frame = pd.DataFrame({"id": ["C1", "C2"], "charges": [29.85, 56.95], "seats": [3, 12]})

    from_csv = read_table(frame.to_csv(index=False).encode(), "a.csv", max_rows=10)
    from_parquet = read_table(parquet(frame), "a.parquet", max_rows=10)

    pd.testing.assert_frame_equal(from_csv, from_parquet)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "'book.csv' is empty"),
        ("id,name\nC1,Ren\xe9e\n".encode("latin-1"), "'book.csv' is not UTF-8 CSV or Parquet"),
        (bytes(range(256)) * 4, "'book.csv' is not UTF-8 CSV or Parquet"),
        (b"id,name\n", "'book.csv' has column names but no data rows"),
        (b"PAR1 not really parquet", "'book.csv' is not a readable Parquet file"),
    ],
)
def test_unreadable_files_are_refused(data: bytes, problem: str) -> None:
    error = refusal(data)

    assert error.field == "file"
    assert error.problem.startswith(problem)
    assert error.allowed == "a UTF-8 CSV file with a header row, or a Parquet file"


def test_a_csv_parse_error_names_its_line() -> None:
    error = refusal(b"id,plan\nC1,Gold\nC2,Gold,extra\n")

    assert error.field == "file"
    assert error.problem == (
        "'book.csv' is not a readable CSV file (Expected 2 fields in line 3, saw 3)"
    )


def test_an_unclosed_quote_is_refused() -> None:
    error = refusal(b'id,plan\nC1,"Gold\n')

    assert error.field == "file"
    assert "not a readable CSV file" in error.problem


@pytest.mark.parametrize("header", [b"id,plan,id", b"id,plan, id "])
def test_two_columns_of_one_name_are_refused(header: bytes) -> None:
    error = refusal(header + b"\nC1,Gold,C1\n")

    assert error.field == "file"
    assert error.problem == "'book.csv' has two or more columns named ['id']"


def test_duplicate_parquet_columns_are_refused() -> None:
    frame = pd.DataFrame([["C1", "Gold"]], columns=["id", " id"])

    error = refusal(parquet(frame))

    assert (error.field, error.problem) == (
        "file",
        "'book.csv' has two or more columns named ['id']",
    )


@pytest.mark.parametrize("make", ["csv", "parquet", "rows"])
def test_at_most_max_rows(make: str) -> None:
    frame = pd.DataFrame({"id": ["C1", "C2", "C3"]})

    def read(max_rows: int) -> pd.DataFrame:
        if make == "rows":
            return rows_table(frame.to_dict("records"), max_rows=max_rows)
        data = parquet(frame) if make == "parquet" else frame.to_csv(index=False).encode()
        return read_table(data, None, max_rows=max_rows)

    assert len(read(3)) == 3
    with pytest.raises(DataFileError) as caught:
        read(2)
    assert caught.value.field == "rows"
    assert caught.value.problem == "more than 2 rows"
    assert caught.value.allowed == "at most 2 rows (AIMESH_MAX_BOOK_ROWS)"


def test_a_nested_parquet_value_names_its_row_and_column() -> None:
    frame = pd.DataFrame({"id": ["C1", "C2"], "tags": [["a"], ["b", "c"]]})

    error = refusal(parquet(frame))

    assert error.field == "file"
    assert error.problem == "row 1, column 'tags' holds a nested value (ndarray)"


def test_json_rows_become_text_with_missing_keys_empty() -> None:
    rows: list[dict[str, object]] = [
        {"id": "C1", "charges": 29.85, "seats": 3, "active": True},
        {"id": "C2", "charges": None, "region": "north"},
    ]

    raw = rows_table(rows, max_rows=10)

    assert raw.to_dict("list") == {
        "id": ["C1", "C2"],
        "charges": ["29.85", ""],
        "seats": ["3", ""],
        "active": ["true", ""],
        "region": ["", "north"],
    }


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([], "no rows"),
        ([{}, {}], "the rows have no keys"),
        ([{"id": "C1"}, "C2"], "rows[1] is not an object"),
        (
            [{"id": "C1"}, {"id": "C2", "plan": {"name": "Gold"}}],
            "rows[1], key 'plan' holds a nested value (dict)",
        ),
        ([{"id": ["C1"]}], "rows[0], key 'id' holds a nested value (list)"),
    ],
)
def test_bad_json_rows_are_refused(rows: list[dict[str, object]], problem: str) -> None:
    with pytest.raises(DataFileError) as caught:
        rows_table(rows, max_rows=10)

    assert (caught.value.field, caught.value.problem) == ("rows", problem)
