from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aimesh.errors import DataFileError
from aimesh.ml.tabular import (
    MIN_ROWS,
    clean_column,
    encode_binary_target,
    prepare_tabular,
    read_csv_file,
)


def labelled(labels: list[object], n_rows: int = 60) -> pd.DataFrame:
    """A table of n_rows cycling through labels, with one informative feature."""
    values = [labels[i % len(labels)] for i in range(n_rows)]
    return pd.DataFrame({"x": np.arange(n_rows, dtype=float) % 7, "target": values})


def test_infers_numeric_and_categorical_columns(make_churn: Callable[..., pd.DataFrame]) -> None:
    frame = make_churn(100)
    frame["charges_text"] = frame["total_charges"].astype(str)
    frame.loc[:4, "charges_text"] = " "
    frame["partner"] = np.where(np.arange(100) % 3 == 0, "Yes", "No")
    frame["senior"] = np.arange(100) % 2 == 0

    table = prepare_tabular(frame, "churn")

    assert set(table.numeric) == {
        "monthly_charges",
        "tenure",
        "total_charges",
        "charges_text",
        "senior",
    }
    assert set(table.categorical) == {"contract", "partner"}
    assert table.X["charges_text"].isna().sum() == 5
    assert table.X["senior"].dtype == float


def test_clean_column_keeps_text_with_numbers_as_categorical() -> None:
    values = clean_column(pd.Series(["1", "2", "three", " "]))

    assert values.tolist()[:3] == ["1", "2", "three"]
    assert pd.isna(values.iloc[3])


def test_drops_identifier_and_constant_columns(make_churn: Callable[..., pd.DataFrame]) -> None:
    frame = make_churn(100)
    frame["customer_name"] = [f"name-{i}" for i in range(100)]
    frame["customerID"] = np.arange(100)
    frame["region"] = "north"
    frame["exact_amount"] = np.linspace(0, 1, 100)  # unique floats, not an id

    table = prepare_tabular(frame, "churn")

    assert table.dropped == {
        "customer_name": "identifier (every value unique)",
        "customerID": "identifier (id-like name, every value unique)",
        "region": "constant",
    }
    assert "exact_amount" in table.numeric


@pytest.mark.parametrize(
    ("labels", "positive"),
    [
        (["Yes", "No"], "Yes"),
        (["no", "YES "], "YES"),
        (["y", "n"], "y"),
        ([True, False], "True"),
        (["TRUE", "false"], "TRUE"),
        ([0, 1], "1"),
        (["1", "0"], "1"),
        ([1.0, 0.0], "1.0"),
        (["Churned", "Stayed"], "Churned"),
        (["No churn", "Churn"], "Churn"),
        (["active", "cancelled"], "cancelled"),
    ],
)
def test_maps_binary_labels(labels: list[object], positive: str) -> None:
    table = prepare_tabular(labelled(labels), "target")

    assert table.positive_label == positive
    expected = [str(labels[i % 2]).strip() == positive for i in range(60)]
    assert table.y.tolist() == [int(flag) for flag in expected]


def test_rows_with_missing_target_are_dropped() -> None:
    frame = labelled(["Yes", "No", None, " "], n_rows=120)

    table = prepare_tabular(frame, "target")

    assert table.n_missing_target == 60
    assert len(table.X) == len(table.y) == 60


def test_target_is_matched_case_insensitively() -> None:
    assert prepare_tabular(labelled(["Yes", "No"]), "TARGET").target == "target"


def test_encode_binary_target_keeps_missing_as_nan() -> None:
    labels, positive, negative = encode_binary_target(pd.Series(["Yes", None, "no"]), "t")

    assert labels.tolist()[0] == 1.0 and np.isnan(labels.iloc[1]) and labels.iloc[2] == 0.0
    assert (positive, negative) == ("Yes", "no")


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda d: d / "absent.csv", "does not exist"),
        (lambda d: d, "is a directory"),
        (lambda d: write(d / "empty.csv", b""), "is empty"),
        (lambda d: write(d / "image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"), "not a CSV"),
        (lambda d: write(d / "header.csv", b"a,b,churn\n"), "no data rows"),
    ],
)
def test_read_csv_file_rejects_unusable_files(make_path, message: str, tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=message) as caught:
        read_csv_file(make_path(tmp_path))

    assert caught.value.field == "path"


def test_read_csv_file_reads_a_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.csv", b"a, b\n1, x\n2, y\n")

    assert read_csv_file(path).columns.tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("frame", "field", "message"),
    [
        (labelled(["Yes", "No"]).rename(columns={"target": "label"}), "target", "'x', 'label'"),
        (labelled(["Yes"]), "target", "one class only"),
        (labelled(["a", "b", "c"]), "target", "3 values .'a', 'b', 'c'."),
        (labelled(["red", "blue"]), "target", "cannot tell which"),
        (labelled([None]), "target", "no values"),
        (labelled(["Yes", "No"], n_rows=MIN_ROWS - 1), "rows", "too few"),
        (labelled(["Yes"] + ["No"] * 9, n_rows=80), "target", "only 8 rows of its rarer"),
        (labelled(["Yes", "No"]).assign(x=1.0), "columns", "no usable feature"),
    ],
    ids=[
        "no-target",
        "one-class",
        "three-labels",
        "ambiguous",
        "empty",
        "few-rows",
        "few-minority",
        "no-features",
    ],
)
def test_prepare_tabular_rejects_unusable_tables(
    frame: pd.DataFrame, field: str, message: str
) -> None:
    with pytest.raises(DataFileError, match=message) as caught:
        prepare_tabular(frame, "target")

    assert caught.value.field == field
