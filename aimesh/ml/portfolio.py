"""The MSP's client portfolio: the Telco churn table with stable client ids.

The Telco file has no customer id, so clients are numbered by their row in the CSV:
row 1 is ``C00001``, row 7043 is ``C07043``. Lookups accept any case and missing zero
padding (``c1234``, ``C1234`` and ``C01234`` are the same client).
"""

import re
from pathlib import Path

import pandas as pd

from aimesh.errors import DataFileError, UnknownClientError
from aimesh.ml.tabular import clean_column, read_csv_file, require_columns

CLIENT_ID = "client_id"
"""Name of the portfolio index."""

NUMERIC_COLUMNS = ["tenure", "monthly_charges", "total_charges"]
"""Numeric columns every portfolio must have (tenure in months, charges in USD)."""

PORTFOLIO_COLUMNS = ["churn", *NUMERIC_COLUMNS]
"""Columns every portfolio must have."""

BOOK_FIELD_NAMES = {"churn": "churned", "tenure": "tenure_months"}
"""Portfolio columns -> the client-book field names (:mod:`aimesh.portfolio.book`) they hold."""

_CLIENT_ID = re.compile(r"[cC](\d{1,9})")


def client_id(position: int) -> str:
    """Return the id of the client in 0-based CSV row ``position`` (0 -> ``"C00001"``)."""
    return f"C{position + 1:05d}"


def normalize_client_id(value: str) -> str:
    """Return the canonical form of a client id (``" c42 "`` -> ``"C00042"``).

    Raises:
        UnknownClientError: The value is not ``C`` followed by digits, or is ``C0``.
    """
    match = _CLIENT_ID.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise UnknownClientError(str(value))
    return client_id(int(match.group(1)) - 1)


def load_portfolio(path: Path) -> pd.DataFrame:
    """Read the portfolio CSV.

    Args:
        path: The Telco churn CSV (or any file with the same columns).

    Returns:
        One row per client, index ``client_id`` (``C00001``... in CSV row order);
        :data:`NUMERIC_COLUMNS` are float, NaN where the file has them empty (the 11
        ``total_charges`` of Telco clients with tenure 0).

    Raises:
        DataFileError: The file is unusable, lacks :data:`PORTFOLIO_COLUMNS` or has text in
            a numeric column.
    """
    frame = read_csv_file(path)
    require_columns(frame, PORTFOLIO_COLUMNS, "portfolio")
    for name in NUMERIC_COLUMNS:
        frame[name] = clean_column(frame[name])
        if not pd.api.types.is_float_dtype(frame[name]):
            raise DataFileError(name, "has non-numeric values", "numbers, or blanks for missing")
    frame.index = pd.Index([client_id(i) for i in range(len(frame))], name=CLIENT_ID)
    return frame


def lookup_client(portfolio: pd.DataFrame, client: str) -> str:
    """Return the canonical id of a client of the portfolio.

    Args:
        portfolio: The table from :func:`load_portfolio`.
        client: A client id, e.g. ``"C00042"`` or ``"c42"`` (see :func:`normalize_client_id`).

    Returns:
        The id as it appears in the portfolio index, e.g. ``"C00042"``.

    Raises:
        UnknownClientError: Malformed id or not in the portfolio.
    """
    canonical = normalize_client_id(client)
    if canonical not in portfolio.index:
        raise UnknownClientError(client)
    return canonical


def get_client(portfolio: pd.DataFrame, client: str) -> pd.DataFrame:
    """Return one client's row, indexed by its canonical id (see :func:`lookup_client`).

    Raises:
        UnknownClientError: Malformed id or not in the portfolio.
    """
    return portfolio.loc[[lookup_client(portfolio, client)]]
