"""Turn an uploaded client book (CSV, Parquet or JSON rows) into a raw table of strings.

The raw table has one column per column of the upload, named as in the upload (surrounding
blanks stripped), and one row per data row; every value is a string, ``""`` for a missing
one. Typing the values is :mod:`aimesh.portfolio.importer`'s job, so a CSV, a Parquet file
and JSON rows holding the same data give the same book.

CSV: UTF-8 (a byte-order mark is fine), comma-separated, a header row first. Parquet: any
file pyarrow reads whose columns hold strings, numbers, booleans or dates (a pandas index
stored in the file becomes a column again).
"""

import io
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal

import pandas as pd

from aimesh.errors import DataFileError

PARQUET_MAGIC = b"PAR1"
"""First bytes of every Parquet file."""

_ALLOWED_FILE = "a UTF-8 CSV file with a header row, or a Parquet file"
_ALLOWED_VALUES = "strings, numbers, booleans or null"
_PANDAS_ERROR = re.compile(r"^(Error tokenizing data\. )?(C error: )?")


def read_table(data: bytes, filename: str | None, *, max_rows: int) -> pd.DataFrame:
    """Read an uploaded CSV or Parquet file into a raw table of strings.

    The format is told by the content, not the name: Parquet when ``data`` starts with
    ``PAR1``, otherwise UTF-8 CSV. CSV values are kept as written (``"007"`` stays
    ``"007"``); Parquet values become their text (``29.85`` -> ``"29.85"``, ``True`` ->
    ``"true"``, a date -> ISO 8601, null -> ``""``).

    Args:
        data: The file's bytes.
        filename: The file's name, for messages (None: "the file").
        max_rows: Most data rows accepted (``AIMESH_MAX_BOOK_ROWS``).

    Returns:
        The raw table, shape (n_rows, n_columns): string values, ``""`` for missing, a
        default ``RangeIndex`` (position = data row number - 1).

    Raises:
        DataFileError: (field ``file``) The file is empty, not UTF-8 CSV nor Parquet, not
            parsable (the message gives pandas' line), has a header but no rows, has two
            columns of one name or a nested value; (field ``rows``) it has more than
            ``max_rows`` rows.
    """
    name = repr(filename) if filename else "the file"
    if not data:
        raise DataFileError("file", f"{name} is empty", _ALLOWED_FILE)
    if data.startswith(PARQUET_MAGIC):
        frame = _read_parquet(data, name, max_rows)
    else:
        frame = _read_csv(data, name, max_rows)
    return _checked(frame, name, max_rows)


def rows_table(rows: Sequence[Mapping[str, object]], *, max_rows: int) -> pd.DataFrame:
    """Make a raw table of strings from JSON rows (one object per client).

    Columns are the rows' keys in the order they first appear; a key missing from a row is
    a missing value. Values become text as in :func:`read_table` (``null`` -> ``""``).

    Args:
        rows: The rows: objects whose values are strings, numbers, booleans or null.
        max_rows: Most rows accepted (``AIMESH_MAX_BOOK_ROWS``).

    Returns:
        The raw table, as :func:`read_table` returns it.

    Raises:
        DataFileError: (field ``rows``) No rows, more than ``max_rows`` rows, a row that is
            not an object, or a nested value (the message names its row and column).
    """
    if not rows:
        raise DataFileError("rows", "no rows", "one object per client")
    if len(rows) > max_rows:
        raise _too_many_rows(max_rows)
    columns: dict[str, None] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataFileError("rows", f"rows[{index}] is not an object", "one object per client")
        columns.update(dict.fromkeys(row))
    if not columns:
        raise DataFileError("rows", "the rows have no keys", "one key per column")
    table = {
        column: [
            _cell_text(row.get(column), "rows", f"rows[{i}], key {column!r}")
            for i, row in enumerate(rows)
        ]
        for column in columns
    }
    return _checked(pd.DataFrame(table, dtype=str), "the rows", max_rows)


def _read_csv(data: bytes, name: str, max_rows: int) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise DataFileError("file", f"{name} is not UTF-8 CSV or Parquet", _ALLOWED_FILE)
    try:
        table = pd.read_csv(
            io.StringIO(text),
            header=None,
            dtype=str,
            keep_default_na=False,
            nrows=max_rows + 2,  # the header, and one row too many to notice it
        )
    except pd.errors.EmptyDataError:
        raise DataFileError("file", f"{name} has no header row", _ALLOWED_FILE) from None
    except ValueError as exc:  # pandas' ParserError is one
        reason = _PANDAS_ERROR.sub("", str(exc).strip().splitlines()[0] if str(exc) else "")
        raise DataFileError(
            "file",
            f"{name} is not a readable CSV file ({reason or type(exc).__name__})",
            _ALLOWED_FILE,
        ) from None
    header = table.iloc[0].tolist()
    frame = table.iloc[1:].reset_index(drop=True).fillna("")
    frame.columns = pd.Index(header)
    return frame


def _read_parquet(data: bytes, name: str, max_rows: int) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        too_many = pq.read_metadata(io.BytesIO(data)).num_rows > max_rows
        frame = (
            None if too_many else pd.read_parquet(io.BytesIO(data), dtype_backend="numpy_nullable")
        )
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise DataFileError(
            "file", f"{name} is not a readable Parquet file ({reason})", _ALLOWED_FILE
        ) from None
    if frame is None:
        raise _too_many_rows(max_rows)
    if any(level is not None for level in frame.index.names):
        frame = frame.reset_index()
    return pd.DataFrame(
        {position: _column_text(frame.iloc[:, position]) for position in range(frame.shape[1])}
    ).set_axis(list(frame.columns), axis=1)


def _column_text(values: pd.Series) -> pd.Series:
    """One Parquet column as text: vectorised for plain types, value by value for others."""
    missing = values.isna().to_numpy()
    if pd.api.types.is_bool_dtype(values):
        text = values.map({True: "true", False: "false"})
    elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_string_dtype(values):
        text = values.astype(str)
    else:
        column = str(values.name)
        text = pd.Series(
            [
                _cell_text(value, "file", f"row {row + 1}, column {column!r}")
                for row, value in enumerate(values)
            ],
            index=values.index,
        )
    return text.astype(str).mask(missing, "")


def _cell_text(value: object, field: str, where: str) -> str:
    """The text of one value, ``""`` for a missing one.

    Raises:
        DataFileError: (field ``field``) A nested value (list, object, bytes...); the
            message says ``where`` it is.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, str | int | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise DataFileError(
        field, f"{where} holds a nested value ({type(value).__name__})", _ALLOWED_VALUES
    )


def _checked(frame: pd.DataFrame, name: str, max_rows: int) -> pd.DataFrame:
    """Check the row count and the column names of a raw table; strip the names."""
    if len(frame) == 0:
        raise DataFileError("file", f"{name} has column names but no data rows", _ALLOWED_FILE)
    if len(frame) > max_rows:
        raise _too_many_rows(max_rows)
    names = [_column_name(label) for label in frame.columns]
    twice = sorted({label for label in names if names.count(label) > 1})
    if twice:
        raise DataFileError(
            "file", f"{name} has two or more columns named {twice}", "one column per name"
        )
    frame.columns = pd.Index(names, dtype=object)
    return frame


def _column_name(label: Hashable) -> str:
    return "" if label is None else str(label).strip()


def _too_many_rows(max_rows: int) -> DataFileError:
    return DataFileError(
        "rows", f"more than {max_rows} rows", f"at most {max_rows} rows (AIMESH_MAX_BOOK_ROWS)"
    )
