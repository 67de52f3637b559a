"""Validate, map and type a raw client table (:mod:`aimesh.portfolio.reader`) into a book.

A mapping names which column of the file holds each field (``client_id`` is required, the
others optional); every other column is a feature whose type is inferred. Every check runs
before anything is stored: bad input raises an error that names the field, the column and
the row, and what would be accepted.

Numbers of the mapped fields (``monthly_charges``, ``tenure_months``, ``total_charges``)
may carry one leading currency sign (``$``, ``€``, ``£``) and comma thousands separators
in groups of three (``$1,234.50`` is 1234.5); a comma anywhere else (``1,5``) is refused,
never guessed. Feature columns are typed by :func:`aimesh.ml.tabular.clean_column` (plain
numbers only).
"""

from collections.abc import Mapping, Sequence
from typing import get_args

import numpy as np
import pandas as pd

from aimesh.errors import DataFileError, InvalidInputError
from aimesh.ml.tabular import (
    NEGATIVE_LABELS,
    POSITIVE_LABELS,
    clean_column,
    encode_binary_target,
    normalise_label,
)
from aimesh.portfolio.book import (
    CLIENT_ID,
    MAX_CATEGORIES,
    Column,
    ColumnType,
    FieldName,
    Label,
)

AnyMapping = Mapping[str, str] | Mapping[FieldName, str]
"""A mapping of fields to columns, as a client sends it or as already checked."""

FIELDS: tuple[FieldName, ...] = get_args(FieldName)
"""Every field a mapping can name, in the book's column order."""

MAX_ID_CHARS = 64
"""Longest client id (characters, after stripping blanks)."""

MAP = "map"
"""The ``field`` of mapping errors (the CLI's ``--map`` option)."""

_NON_NEGATIVE = frozenset({"monthly_charges", "tenure_months"})
_CURRENCY = r"^(-?)\s*[$€£]\s*"
_GROUPED = r"^-?\d{1,3}(?:,\d{3})+(?:\.\d*)?$"
_ALLOWED_NUMBERS = "numbers such as 29.85, 1234 or $1,234.50; empty for unknown"
_ALLOWED_OUTCOMES = (
    "both churned and stayed rows, labelled yes/no, true/false, 1/0 or y/n (any case; also "
    "churned/stayed, left/active...), empty for unknown; leave churned unmapped when the file "
    "has no past outcomes"
)


def parse_mapping(items: Sequence[str]) -> dict[FieldName, str]:
    """Read the CLI's ``--map FIELD=COLUMN`` options into a mapping.

    Args:
        items: The options' values, e.g. ``["client_id=Customer ID", "churned=Churn"]``.

    Returns:
        Field -> file column, checked by :func:`check_mapping`.

    Raises:
        InvalidInputError: (field ``map``) An item without ``=``, a field given twice, or a
            mapping :func:`check_mapping` refuses.
    """
    pairs: dict[str, str] = {}
    for item in items:
        field, equals, column = item.partition("=")
        field = field.strip()
        if not equals:
            raise InvalidInputError(MAP, f"{item!r} has no '='", "FIELD=COLUMN")
        if field in pairs:
            raise InvalidInputError(
                MAP,
                f"field {field!r} is mapped twice ({pairs[field]!r} and {column.strip()!r})",
                "each field once",
            )
        pairs[field] = column
    return check_mapping(pairs)


def check_mapping(mapping: AnyMapping) -> dict[FieldName, str]:
    """Check a mapping of fields to file columns (the API's ``mapping``, the CLI's ``--map``).

    Args:
        mapping: Field -> column of the file; column names are stripped of blanks.

    Returns:
        The mapping in the book's field order (:data:`FIELDS`).

    Raises:
        InvalidInputError: (field ``map``) An unknown field (the message lists the fields),
            a field mapped to no column, ``client_id`` missing, or two fields mapped to one
            column.
    """
    unknown = sorted(str(name) for name in mapping if name not in FIELDS)
    if unknown:
        raise InvalidInputError(MAP, f"unknown field(s) {unknown}", ", ".join(FIELDS))
    columns = {name: str(column).strip() for name, column in mapping.items()}
    for name, column in columns.items():
        if not column:
            raise InvalidInputError(MAP, f"field {name!r} is mapped to no column", "FIELD=COLUMN")
    if CLIENT_ID not in columns:
        raise InvalidInputError(
            MAP,
            "client_id is not mapped: the book needs the column of your own client ids",
            "client_id=COLUMN",
        )
    fields = {name: columns[name] for name in FIELDS if name in columns}
    seen: dict[str, str] = {}
    for name, column in fields.items():
        if column in seen:
            raise InvalidInputError(
                MAP,
                f"fields {seen[column]!r} and {name!r} are both mapped to column {column!r}",
                "one field per column",
            )
        seen[column] = name
    return fields


def build_book(
    raw: pd.DataFrame, mapping: AnyMapping
) -> tuple[pd.DataFrame, list[Column], Label | None]:
    """Check, map and type a raw table into a book's table, schema and label.

    Args:
        raw: The raw table from :mod:`aimesh.portfolio.reader`, shape (n_rows, n_columns):
            string values, ``""`` for missing, position = data row number - 1.
        mapping: Field -> column of ``raw`` (checked by :func:`check_mapping`).

    Returns:
        ``(frame, columns, label)``. ``frame``: index ``client_id`` (the stripped ids,
        strings), then the mapped fields under their field names in :data:`FIELDS` order
        (``churned`` float64 1.0/0.0/NaN, the numbers float64 with NaN for unknown, ``name``
        strings with NaN), then the features in file order (``number`` float64, ``category``
        and ``text`` strings, NaN for missing). ``columns``: one :class:`Column` per column
        of the frame, the id first. ``label``: the churn outcomes, None when ``churned`` is
        not mapped.

    Raises:
        InvalidInputError: (field ``map``) A bad mapping, or one naming a column the file
            lacks (the message lists the file's columns).
        DataFileError: (field ``columns``) A column without a name, or an unmapped column
            named like a field; (field ``client_id``) an empty, too long, unprintable or
            repeated id, naming its row(s); (field ``churned``) no outcomes, one class or a
            value that is no outcome; (a number field) a value that is not a number, or a
            negative ``monthly_charges``/``tenure_months``, naming the first bad row.
    """
    fields = check_mapping(mapping)
    names = [str(name) for name in raw.columns]
    _check_columns(names, fields)
    id_source = fields["client_id"]
    ids = _client_ids(raw[id_source], id_source)
    data: dict[str, pd.Series] = {}
    columns = [Column(name=CLIENT_ID, type="text", field="client_id", source=id_source)]
    for field, source in fields.items():
        if field != CLIENT_ID:
            data[field], kind = _typed_field(field, raw[source], source)
            columns.append(_describe(field, data[field], kind, source, field))
    for source in names:
        if source not in fields.values():
            data[source], kind = _feature(raw[source], source)
            columns.append(_describe(source, data[source], kind, source, None))
    frame = pd.DataFrame(data, index=raw.index).set_axis(ids, axis=0)
    label = _label(frame["churned"], fields["churned"]) if "churned" in fields else None
    return frame, columns, label


def _check_columns(names: list[str], fields: Mapping[FieldName, str]) -> None:
    if "" in names:
        raise DataFileError(
            "columns",
            f"column {names.index('') + 1} of the file has no name",
            "a name for every column in the header row",
        )
    for field, source in fields.items():
        if source not in names:
            raise InvalidInputError(
                MAP,
                f"{field}={source!r}: the file has no column {source!r}",
                f"a column of the file: {_shown(names, 30)}",
            )
    clash = [name for name in names if name in FIELDS and name not in fields.values()]
    if clash:
        raise DataFileError(
            "columns",
            f"column {clash[0]!r} is not mapped but is named like the field {clash[0]!r}",
            f"map it (--map {clash[0]}={clash[0]}) or rename the column",
        )


def _client_ids(values: pd.Series, source: str) -> pd.Index:
    ids = values.str.strip()
    lengths = ids.str.len()
    printable = ids.map(str.isprintable).astype(bool) & ~ids.str.contains("/", regex=False)
    bad = (lengths == 0) | (lengths > MAX_ID_CHARS) | ~printable
    if bad.any():
        row = _first(bad)
        what = f"the id {values.iloc[row]!r}" if lengths.iloc[row] else "an empty id"
        raise DataFileError(
            CLIENT_ID,
            f"column {source!r} has {what} in row {row + 1}",
            f"1-{MAX_ID_CHARS} printable characters but '/' for every client "
            "(an id is part of the API's paths)",
        )
    repeated = ids.duplicated(keep=False)
    if repeated.any():
        first = ids[repeated].iloc[0]
        rows = np.flatnonzero((ids == first).to_numpy())[:2] + 1
        raise DataFileError(
            CLIENT_ID,
            f"column {source!r} has the id {first!r} in rows {rows[0]} and {rows[1]}",
            "one row per client id",
        )
    return pd.Index(ids, name=CLIENT_ID)


def _typed_field(field: FieldName, values: pd.Series, source: str) -> tuple[pd.Series, ColumnType]:
    if field == "churned":
        return _outcomes(values, source), "number"
    if field == "name":
        text = values.str.strip()
        return text.mask(text == ""), "text"
    return _numbers(field, values, source), "number"


def _outcomes(values: pd.Series, source: str) -> pd.Series:
    text = values.str.strip()
    if (text == "").all():
        raise DataFileError("churned", f"column {source!r} has no outcomes", _ALLOWED_OUTCOMES)
    known = POSITIVE_LABELS | NEGATIVE_LABELS
    unknown = sorted(
        value for value in text.unique() if value and normalise_label(value) not in known
    )
    if unknown:
        raise DataFileError(
            "churned",
            f"column {source!r} has values that are not outcomes: {_shown(unknown, 10)}",
            _ALLOWED_OUTCOMES,
        )
    try:
        labels, _, _ = encode_binary_target(text.mask(text == ""), source)
    except DataFileError as exc:  # one class, more than two labels, two of one meaning
        raise DataFileError("churned", exc.problem, _ALLOWED_OUTCOMES) from None
    return labels


def _numbers(field: FieldName, values: pd.Series, source: str) -> pd.Series:
    text = values.str.strip()
    numbers = pd.to_numeric(text.mask(text == ""), errors="coerce").astype(float)
    formatted = numbers.isna() & (text != "")
    if formatted.any():  # currency signs and thousands separators: only these values
        numbers[formatted] = _formatted_numbers(text[formatted])
    bad = (text != "") & ~np.isfinite(numbers)
    if bad.any():
        row = _first(bad)
        raise DataFileError(
            field,
            f"column {source!r} has {text.iloc[row]!r} in row {row + 1}: not a number",
            _ALLOWED_NUMBERS,
        )
    if field in _NON_NEGATIVE and (numbers < 0).any():
        row = _first(numbers < 0)
        raise DataFileError(
            field,
            f"column {source!r} has {text.iloc[row]!r} in row {row + 1}: negative",
            "numbers of 0 or more; empty for unknown",
        )
    return numbers


def _formatted_numbers(text: pd.Series) -> pd.Series:
    """Numbers written with a leading currency sign or comma thousands separators, else NaN."""
    plain = text.str.replace(_CURRENCY, r"\1", regex=True)
    plain = plain.mask(plain.str.match(_GROUPED), plain.str.replace(",", "", regex=False))
    return pd.to_numeric(plain, errors="coerce").astype(float)


def _feature(values: pd.Series, source: str) -> tuple[pd.Series, ColumnType]:
    typed = clean_column(values)
    if pd.api.types.is_float_dtype(typed):
        infinite = np.isinf(typed)
        if infinite.any():
            row = _first(infinite)
            raise DataFileError(
                source,
                f"column {source!r} has {values.iloc[row]!r} in row {row + 1}: not finite",
                "finite numbers; empty for unknown",
            )
        return typed, "number"
    return typed, "category" if typed.nunique() <= MAX_CATEGORIES else "text"


def _describe(
    name: str, values: pd.Series, kind: ColumnType, source: str, field: FieldName | None
) -> Column:
    present = values.dropna()
    numbers = kind == "number" and len(present) > 0
    return Column(
        name=name,
        type=kind,
        field=field,
        source=source,
        values=sorted(str(value) for value in present.unique()) if kind == "category" else None,
        min=float(present.min()) if numbers else None,
        max=float(present.max()) if numbers else None,
        missing=len(values) - len(present),
    )


def _label(churned: pd.Series, source: str) -> Label:
    return Label(
        column=source,
        positives=int((churned == 1.0).sum()),
        negatives=int((churned == 0.0).sum()),
    )


def _first(mask: pd.Series) -> int:
    """Position of the first True of ``mask``."""
    return int(np.flatnonzero(mask.to_numpy())[0])


def _shown(values: Sequence[str], most: int) -> str:
    """The first ``most`` values, quoted, and how many more there are."""
    listed = ", ".join(repr(value) for value in values[:most])
    return listed + (f" and {len(values) - most} more" if len(values) > most else "")
