"""Segments of a client book: filters on its columns, checked against its schema.

One shape serves the agents' tools (JSON an LLM writes), the scoring API (query strings)
and the tools (texts an LLM writes). :data:`Filters` maps a column to a :data:`FilterValue`:

- a scalar: equality (text for ``category``/``text`` columns, a number for ``number`` ones);
- a list of scalars: one of them;
- a :class:`Range` ``{"min": x, "max": y}`` (either bound optional, both inclusive), for
  ``number`` columns only.

Filters on several columns all apply (AND). Every column but the id and ``name`` can be
filtered, including ``churned`` (1 = churned, 0 = stayed: ``churned=0`` keeps the clients
still to be retained); the id and the name identify one client, which a lookup does.

Text syntax (query strings, the tools' ``filters``): ``column=value``, ``column=a|b|c`` (one of),
``column=lo..hi``, ``column=..hi``, ``column=lo..`` (ranges).
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from aimesh.errors import InvalidInputError
from aimesh.portfolio.book import CLIENT_ID, BookInfo, Column

Scalar = str | float
"""One value: text for ``category``/``text`` columns, a number for ``number`` columns."""

MAX_LISTED_VALUES = 20
"""Most values of one category :func:`describe_filterable` lists."""

_SYNTAX = "column=value, column=a|b|c (one of) or column=lo..hi (a range; lo.. and ..hi too)"
_UNFILTERABLE = frozenset({CLIENT_ID, "name"})


class Range(BaseModel):
    """An inclusive range of a ``number`` column; an omitted bound is open."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = Field(default=None, description="Smallest value kept (inclusive).")
    max: float | None = Field(default=None, description="Largest value kept (inclusive).")


FilterValue = Scalar | list[Scalar] | Range
"""Equality, one of several values, or a range (see the module docstring)."""

Filters = dict[str, FilterValue]
"""Column -> the values kept; every filter applies (AND)."""


@dataclass(frozen=True)
class Condition:
    """One checked filter, normalised to the book's column and stored values.

    Attributes:
        column: The book's column name.
        values: The values kept (equality or one of), empty for a range.
        min: Range lower bound (inclusive), None when open or not a range.
        max: Range upper bound (inclusive), None when open or not a range.
        fold_case: Compare text case-insensitively (``text`` columns, whose values the
            schema does not list).
    """

    column: str
    values: tuple[Scalar, ...] = ()
    min: float | None = None
    max: float | None = None
    fold_case: bool = False

    @property
    def value(self) -> FilterValue:
        """The condition as a filter value (the normalised filter results report)."""
        if not self.values:
            return Range(min=self.min, max=self.max)
        return self.values[0] if len(self.values) == 1 else list(self.values)

    def mask(self, values: pd.Series) -> pd.Series:
        """Which of a column's values the condition keeps (missing values never)."""
        if not self.values:
            low = -math.inf if self.min is None else self.min
            high = math.inf if self.max is None else self.max
            return values.between(low, high)
        if self.fold_case:
            return values.str.casefold().isin([str(v).casefold() for v in self.values])
        return values.isin(self.values)


def parse_filter(text: str) -> tuple[str, FilterValue]:
    """Read one filter written as text (a ``filter`` query parameter or a tool's filter).

    ``contract=Month-to-month`` -> ``("contract", "Month-to-month")``;
    ``contract=One year|Two year`` -> a list; ``tenure_months=..12``,
    ``tenure_months=24..``, ``monthly_charges=50..80`` -> a :class:`Range`. Values stay
    text; :func:`check_filters` reads numbers against the book's schema.

    Args:
        text: ``column=value``.

    Returns:
        ``(column, value)``.

    Raises:
        InvalidInputError: (field ``filter``) No ``=``, an empty column or value, or an
            empty choice in ``a|b``.
    """
    column, equals, value = (part.strip() for part in text.partition("="))
    if not equals or not column or not value:
        raise InvalidInputError("filter", f"{text!r} is not column=value", _SYNTAX)
    bounds = _range(value)
    if bounds is not None:
        return column, bounds
    if "|" not in value:
        return column, value
    choices = [choice.strip() for choice in value.split("|")]
    if not all(choices):
        raise InvalidInputError("filter", f"{text!r} has an empty choice", _SYNTAX)
    return column, list[Scalar](choices)


def parse_filters(texts: Sequence[str]) -> Filters:
    """Read several text filters (see :func:`parse_filter`) into :data:`Filters`.

    Raises:
        InvalidInputError: A filter is malformed, or two filter the same column (field
            ``filter``).
    """
    filters: Filters = {}
    for text in texts:
        column, value = parse_filter(text)
        if column in filters:
            raise InvalidInputError(
                "filter", f"column {column!r} is filtered twice", "one filter per column; a|b"
            )
        filters[column] = value
    return filters


def format_filters(filters: Filters) -> str:
    """Filters in the text syntax of :func:`parse_filter`, e.g. ``contract=Two year, x=..12``."""
    return ", ".join(f"{column}={_format_value(value)}" for column, value in filters.items())


def check_filters(filters: Filters | None, info: BookInfo) -> list[Condition]:
    """Check filters against a book's schema and normalise them.

    A column name may differ in case from the book's. Category values match
    case-insensitively and become the stored value; ``number`` columns take numbers (or
    text that reads as one: query strings).

    Args:
        filters: Column -> value; None or empty keeps every client.
        info: The book's schema.

    Returns:
        One condition per filter, in the given order.

    Raises:
        InvalidInputError: (field ``filters.<column>``) An unknown or unfilterable column
            (the message lists the filterable ones), a category value the column does not
            hold (it lists the values), a range on a column that is not a number, a value
            that is not a number on a number column, a range with min > max or no bound,
            or an empty list.
    """
    return [_condition(_column(name, info), value, name) for name, value in (filters or {}).items()]


def apply_filters(frame: pd.DataFrame, conditions: Sequence[Condition]) -> pd.Series:
    """The clients every condition keeps.

    Args:
        frame: The book's table.
        conditions: From :func:`check_filters` on this book.

    Returns:
        Boolean mask, same index as ``frame``; all True without conditions.
    """
    mask = pd.Series(True, index=frame.index)
    for condition in conditions:
        mask &= condition.mask(frame[condition.column])
    return mask


def filterable(info: BookInfo) -> list[Column]:
    """The columns of a book that filters may name, in the book's order."""
    return [c for c in info.columns if c.name not in _UNFILTERABLE and c.field not in _UNFILTERABLE]


def describe_filterable(info: BookInfo, columns: Sequence[Column] | None = None) -> str:
    """One compact line of the filterable columns, for tool descriptions and prompts.

    Categories list their values (at most :data:`MAX_LISTED_VALUES`), numbers their
    observed range, text columns say ``text``; e.g. ``contract: Month-to-month|One
    year|Two year; tenure_months: 0..72; city: text``.

    Args:
        info: The book's schema.
        columns: The columns to describe; default every filterable one.
    """
    shown = filterable(info) if columns is None else columns
    return "; ".join(f"{c.name}: {_describe(c)}" for c in shown)


def mentioned_columns(info: BookInfo, text: str) -> list[Column]:
    """The filterable columns a question seems to name.

    By the column's whole name (``tech_support`` as "tech support", any case) or a word of
    one of its values (4 letters or more: "fiber" names ``internet_service`` through
    ``Fiber optic``). A word of a name alone does not count: every billing question says
    "billing", which is not ``paperless_billing``.

    A hint for a model choosing filters, not a parse: the filters it writes are checked by
    :func:`check_filters`.
    """
    folded = f" {' '.join(_LETTERS.findall(text.casefold()))} "
    words = set(folded.split())
    return [c for c in filterable(info) if _named(c.name, folded) or _words(c) & words]


def _named(name: str, folded: str) -> bool:
    phrase = " ".join(_LETTERS.findall(name.casefold()))
    return bool(phrase) and f" {phrase} " in folded


def _words(column: Column) -> set[str]:
    values = column.values or []
    return {w for value in values for w in _WORD.findall(value.casefold())} - _COMMON


_WORD = re.compile(r"[^\W\d_]{4,}")
_LETTERS = re.compile(r"[^\W\d_]+")
_COMMON = frozenset({"service", "services", "client", "clients", "with", "without", "none"})


def _describe(column: Column) -> str:
    if column.type == "number":
        return "number" if column.min is None else f"{_number(column.min)}..{_number(column.max)}"
    if column.type == "text" or not column.values:
        return "text"
    shown = "|".join(column.values[:MAX_LISTED_VALUES])
    more = len(column.values) - MAX_LISTED_VALUES
    return f"{shown}|... ({len(column.values)} values)" if more > 0 else shown


def _column(name: str, info: BookInfo) -> Column:
    columns = filterable(info)
    exact = [c for c in columns if c.name == name]
    folded = [c for c in columns if c.name.casefold() == str(name).casefold()]
    found = exact or folded
    if len(found) != 1:
        raise InvalidInputError(
            f"filters.{name}",
            f"no filterable column {name!r} in this client book",
            f"one of: {', '.join(c.name for c in columns)}",
        )
    return found[0]


def _condition(column: Column, value: FilterValue, given: str) -> Condition:
    field = f"filters.{given}"
    if isinstance(value, Range):
        return _range_condition(column, value, field)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise InvalidInputError(field, "an empty list of values", "at least one value")
    if column.type == "number":
        return Condition(column.name, tuple(_as_number(v, column, field) for v in values))
    text = [_format_scalar(v) for v in values]
    if column.type == "text":
        return Condition(column.name, tuple(text), fold_case=True)
    return Condition(column.name, tuple(_stored_value(v, column, field) for v in text))


def _range_condition(column: Column, bounds: Range, field: str) -> Condition:
    if column.type != "number":
        raise InvalidInputError(
            field,
            f"a range on {column.type} column {column.name!r}",
            _allowed_values(column),
        )
    if bounds.min is None and bounds.max is None:
        raise InvalidInputError(field, "a range without min or max", "min, max or both")
    if bounds.min is not None and bounds.max is not None and bounds.min > bounds.max:
        raise InvalidInputError(
            field, f"min {_number(bounds.min)} is above max {_number(bounds.max)}", "min <= max"
        )
    return Condition(column.name, min=bounds.min, max=bounds.max)


def _as_number(value: Scalar, column: Column, field: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidInputError(
            field,
            f"{value!r} is not a number ({column.name} is a number column)",
            _allowed_values(column),
        )
    return number


def _stored_value(value: str, column: Column, field: str) -> str:
    stored = {v.casefold(): v for v in column.values or []}
    if value.casefold() not in stored:
        raise InvalidInputError(
            field, f"{value!r} is not a value of {column.name!r}", _allowed_values(column)
        )
    return stored[value.casefold()]


def _allowed_values(column: Column) -> str:
    if column.type == "number":
        observed = "" if column.min is None else f" (observed {_describe(column)})"
        return f"a number, a list of numbers or a range {{min, max}}{observed}"
    if column.type == "text":
        return "text, or a list of texts (compared case-insensitively)"
    return f"one or a list of: {', '.join(column.values or [])}"


def _range(value: str) -> Range | None:
    low, dots, high = (part.strip() for part in value.partition(".."))
    if not dots or not (low or high):
        return None
    bounds = [_finite(low), _finite(high)]
    if (low and bounds[0] is None) or (high and bounds[1] is None):
        return None
    return Range(min=bounds[0], max=bounds[1])


def _finite(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _format_value(value: FilterValue) -> str:
    if isinstance(value, Range):
        low = "" if value.min is None else _number(value.min)
        high = "" if value.max is None else _number(value.max)
        return f"{low}..{high}"
    if isinstance(value, list):
        return "|".join(_format_scalar(v) for v in value)
    return _format_scalar(value)


def _format_scalar(value: Scalar) -> str:
    return _number(value) if isinstance(value, float | int) else str(value)


def _number(value: float | None) -> str:
    """A number as people write it: ``12.0`` -> ``12``, ``29.85`` -> ``29.85``."""
    return "" if value is None else f"{value:.10g}"
