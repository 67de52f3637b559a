from pathlib import Path

import pandas as pd
import pytest

from aimesh.config import REPO_DATA_DIR
from aimesh.errors import DataFileError, UnknownClientError
from aimesh.ml.portfolio import get_client, load_portfolio, lookup_client, normalize_client_id


@pytest.fixture
def portfolio_file(tmp_path: Path) -> Path:
    path = tmp_path / "portfolio.csv"
    rows = pd.read_csv(REPO_DATA_DIR / "telco_churn.csv", nrows=500, dtype=str)
    rows.to_csv(path, index=False)
    return path


def test_load_portfolio_numbers_clients_by_row(portfolio_file: Path) -> None:
    portfolio = load_portfolio(portfolio_file)

    assert portfolio.index.name == "client_id"
    assert portfolio.index[0] == "C00001" and portfolio.index[-1] == "C00500"
    assert portfolio["total_charges"].dtype == float
    assert pd.isna(portfolio.loc["C00489", "total_charges"])  # empty in the file (tenure 0)
    assert portfolio.loc["C00001", "monthly_charges"] == 29.85


def test_load_portfolio_rejects_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("churn,tenure\nYes,1\n")

    with pytest.raises(DataFileError, match=r"lacks column\(s\) \['monthly_charges'"):
        load_portfolio(path)


def test_load_portfolio_rejects_text_in_numeric_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("churn,tenure,monthly_charges,total_charges\nYes,one,1,1\n")

    with pytest.raises(DataFileError, match="non-numeric") as caught:
        load_portfolio(path)

    assert caught.value.field == "tenure"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("C00042", "C00042"), ("c00042", "C00042"), (" C42 ", "C00042"), ("c7043", "C07043")],
)
def test_normalize_client_id(raw: str, canonical: str) -> None:
    assert normalize_client_id(raw) == canonical


@pytest.mark.parametrize("raw", ["", "C", "C0", "X00042", "C-1", "C4.2", "client 42", "42"])
def test_malformed_ids_are_unknown_clients(raw: str) -> None:
    with pytest.raises(UnknownClientError, match="unknown client") as caught:
        normalize_client_id(raw)

    assert caught.value.field == "client_id"


def test_lookup_and_get_client(portfolio_file: Path) -> None:
    portfolio = load_portfolio(portfolio_file)

    assert lookup_client(portfolio, "c5") == "C00005"
    row = get_client(portfolio, "c5")
    assert row.index.tolist() == ["C00005"] and row.index.name == "client_id"
    with pytest.raises(UnknownClientError, match="'C00501'"):
        get_client(portfolio, "C00501")
