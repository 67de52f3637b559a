"""Read a training CSV and prepare its columns for a binary classifier.

Works on any churn-like CSV: infers numeric vs categorical columns, maps a two-valued
target to 1 (churn) / 0, drops identifier and constant columns, and rejects unusable input
with a :class:`~aimesh.errors.DataFileError` that names the problem (never a raw pandas
traceback).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aimesh.errors import DataFileError

MIN_ROWS = 50
"""Fewest labelled rows accepted for training."""

MIN_MINORITY = 10
"""Fewest rows of the rarer class: 5-fold stratified CV needs two per fold at least."""

POSITIVE_LABELS = frozenset(
    {"yes", "y", "true", "t", "1", "churn", "churned", "churner", "left", "lost", "cancelled"}
    | {"canceled", "exited", "attrited", "closed", "terminated", "lapsed", "positive", "pos"}
)
"""Normalised target labels that mean "the client churned"."""

NEGATIVE_LABELS = frozenset(
    {"no", "n", "false", "f", "0", "stayed", "retained", "active", "current", "remained"}
    | {"existing", "renewed", "not churned", "no churn", "non-churner", "negative", "neg"}
)
"""Normalised target labels that mean "the client stayed"."""

_ALLOWED_LABELS = "two labels such as yes/no, y/n, true/false, 1/0 or churned/stayed"
_ID_NAME = re.compile(r"(.*[_\s-])?(id|ID|Id)|.*[a-z](ID|Id)")


@dataclass(frozen=True)
class PreparedTable:
    """A table ready for a binary classifier.

    Attributes:
        X: Feature frame, shape (n_rows, n_features); numeric columns are float64 (NaN for
            missing), categorical columns are stripped strings (NaN for missing).
        y: Target, shape (n_rows,), int 1 = churn / positive, 0 = negative.
        target: Name of the target column in the file.
        positive_label: The file's label mapped to 1 (e.g. ``"Yes"``).
        negative_label: The file's label mapped to 0 (e.g. ``"No"``).
        numeric: Names of the numeric feature columns.
        categorical: Names of the categorical feature columns.
        dropped: Dropped column -> reason (identifier, constant).
        n_missing_target: Rows dropped because their target was empty.
    """

    X: pd.DataFrame
    y: np.ndarray
    target: str
    positive_label: str
    negative_label: str
    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str] = field(default_factory=dict)
    n_missing_target: int = 0


def read_csv_file(path: Path) -> pd.DataFrame:
    """Read a comma-separated file (optionally gzip-compressed by its ``.gz`` suffix).

    Args:
        path: The file to read.

    Returns:
        The rows as a DataFrame, at least one row.

    Raises:
        DataFileError: The file is missing, a directory, unreadable, empty, not a text CSV
            or has a header but no rows.
    """
    allowed = "a readable UTF-8 comma-separated file with a header row and data rows"
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise DataFileError("path", f"{path} {problem}", allowed)
    try:
        frame = pd.read_csv(path, skipinitialspace=True, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataFileError("path", f"{path} is empty", allowed) from None
    except ValueError as exc:  # ParserError and UnicodeDecodeError are ValueErrors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataFileError("path", f"{path} is not a CSV file ({reason})", allowed) from None
    except OSError as exc:
        raise DataFileError("path", f"cannot read {path} ({exc})", allowed) from None
    if frame.empty:
        raise DataFileError("path", f"{path} has a header but no data rows", allowed)
    return frame


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    """Check that a frame has the given columns.

    Args:
        frame: The table to check.
        columns: Column names that must be present.
        what: What the table is, for the message (e.g. ``"portfolio"``).

    Raises:
        DataFileError: Some columns are missing; the message lists them.
    """
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataFileError(
            "columns", f"the {what} lacks column(s) {missing}", f"a table with {columns}"
        )


def prepare_tabular(frame: pd.DataFrame, target: str) -> PreparedTable:
    """Type the columns of a churn table and encode its binary target.

    Rows with an empty target are dropped. Feature columns are typed by
    :func:`clean_column`; identifier columns (every value unique: strings, or integers under
    an id-like name such as ``customer_id``) and constant columns are dropped. Missing
    feature values stay NaN: LightGBM handles them natively.

    Args:
        frame: The raw table, shape (n_rows, n_columns).
        target: Name of the target column (matched case-insensitively if not exact).

    Returns:
        The prepared table.

    Raises:
        DataFileError: No such target column (the message lists the columns), the target
            has one class or more than two values, fewer than ``MIN_ROWS`` labelled rows,
            fewer than ``MIN_MINORITY`` rows of the rarer class, or no feature column left.
    """
    column = _find_column(frame, target)
    labels, positive, negative = encode_binary_target(frame[column], column)
    labelled = labels.notna()
    _check_class_counts(labels[labelled], column)
    features, dropped = _typed_features(frame.loc[labelled].drop(columns=column))
    names = [str(name) for name in features.columns]
    numeric = [name for name in names if pd.api.types.is_float_dtype(features[name])]
    return PreparedTable(
        X=features,
        y=labels[labelled].to_numpy(dtype=int),
        target=column,
        positive_label=positive,
        negative_label=negative,
        numeric=numeric,
        categorical=[name for name in names if name not in numeric],
        dropped=dropped,
        n_missing_target=int((~labelled).sum()),
    )


def encode_binary_target(values: pd.Series, name: str) -> tuple[pd.Series, str, str]:
    """Map a two-valued target column to 1.0 (positive) / 0.0, keeping NaN for missing.

    Labels are compared case-insensitively after stripping blanks; numbers compare by value
    (``1``, ``1.0`` and ``"1"`` are the same label). The positive label is the one found
    in :data:`POSITIVE_LABELS`, or else the partner of the one in :data:`NEGATIVE_LABELS`.

    Args:
        values: The target column, shape (n_rows,).
        name: Its name, for messages.

    Returns:
        ``(labels, positive_label, negative_label)``: labels aligned with ``values``;
        the two labels as first written in the file.

    Raises:
        DataFileError: No value, one class only, more than two values, or two labels of
            which neither is recognisably "churn" nor "stayed".
    """
    text = values.map({value: normalise_label(value) for value in values.dropna().unique()})
    distinct = sorted(str(label) for label in text.dropna().unique())
    if not distinct:
        raise DataFileError("target", f"column {name!r} has no values", _ALLOWED_LABELS)
    if len(distinct) == 1:
        raise DataFileError(
            "target", f"column {name!r} has one class only ({distinct[0]!r})", _ALLOWED_LABELS
        )
    if len(distinct) > 2:
        shown = ", ".join(repr(label) for label in distinct[:10])
        more = f" and {len(distinct) - 10} more" if len(distinct) > 10 else ""
        raise DataFileError(
            "target",
            f"column {name!r} has {len(distinct)} values ({shown}{more}), not two",
            _ALLOWED_LABELS,
        )
    positive = _positive_label(distinct[0], distinct[1], name)
    negative = distinct[1] if positive == distinct[0] else distinct[0]
    labels = text.map({positive: 1.0, negative: 0.0}).astype(float)
    return labels, _first_original(values, text, positive), _first_original(values, text, negative)


def clean_column(values: pd.Series) -> pd.Series:
    """Type one feature column as numeric or categorical.

    Booleans and numbers become float64. Text is stripped and blanks become NaN; text whose
    every non-blank value parses as a number (e.g. ``"29.85"`` with some ``" "``) becomes
    float64, anything else stays categorical text.

    Args:
        values: The raw column, shape (n_rows,).

    Returns:
        A float64 series, or a string series with NaN for missing.
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype(str).str.strip()
    text = text.mask(text == "")
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() == text.notna().sum() > 0:
        return numbers.astype(float)
    return text


def _find_column(frame: pd.DataFrame, target: str) -> str:
    if target in frame.columns:
        return target
    matches = [str(name) for name in frame.columns if str(name).strip().lower() == target.lower()]
    if len(matches) == 1:
        return matches[0]
    columns = ", ".join(repr(str(name)) for name in frame.columns)
    raise DataFileError("target", f"no column {target!r} in the file", f"one of: {columns}")


def normalise_label(value: object) -> str | None:
    """A target label as :data:`POSITIVE_LABELS` and :data:`NEGATIVE_LABELS` spell it.

    Stripped and lower-cased; a number by its value (``"1.0"`` -> ``"1"``); None when blank.
    """
    text = str(value).strip().lower()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _positive_label(first: str, second: str, name: str) -> str:
    positives = [label for label in (first, second) if label in POSITIVE_LABELS]
    if len(positives) == 1:
        return positives[0]
    negatives = [label for label in (first, second) if label in NEGATIVE_LABELS]
    if len(negatives) == 1:
        return second if negatives[0] == first else first
    raise DataFileError(
        "target",
        f"cannot tell which of {first!r} and {second!r} in column {name!r} means churn",
        _ALLOWED_LABELS,
    )


def _first_original(values: pd.Series, text: pd.Series, label: str) -> str:
    return str(values[text == label].iloc[0]).strip()


def _check_class_counts(labels: pd.Series, name: str) -> None:
    n_rows = len(labels)
    if n_rows < MIN_ROWS:
        raise DataFileError(
            "rows", f"{n_rows} labelled rows, too few to train", f"at least {MIN_ROWS} rows"
        )
    positives = int(labels.sum())
    minority = min(positives, n_rows - positives)
    if minority < MIN_MINORITY:
        raise DataFileError(
            "target",
            f"column {name!r} has only {minority} rows of its rarer class",
            f"at least {MIN_MINORITY} rows of each class (5-fold cross-validation)",
        )


def _typed_features(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    kept: dict[str, pd.Series] = {}
    dropped: dict[str, str] = {}
    for name in frame.columns:
        values = clean_column(frame[name])
        reason = _drop_reason(str(name), values)
        if reason:
            dropped[str(name)] = reason
        else:
            kept[str(name)] = values
    if not kept:
        raise DataFileError(
            "columns",
            f"no usable feature column (dropped: {dropped or 'none besides the target'})",
            "at least one column besides the target that is neither an identifier nor constant",
        )
    return pd.DataFrame(kept, index=frame.index), dropped


def _drop_reason(name: str, values: pd.Series) -> str | None:
    distinct = values.nunique(dropna=True)
    if distinct <= 1:
        return "constant"
    if distinct < len(values) or values.isna().any():
        return None
    if not pd.api.types.is_float_dtype(values):
        return "identifier (every value unique)"
    if _ID_NAME.fullmatch(name) and (values % 1 == 0).all():
        return "identifier (id-like name, every value unique)"
    return None
