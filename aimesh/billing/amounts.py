"""Budget amounts: USD limits, nano-USD integers and UTC calendar windows.

Spend and reservations are kept in nano-USD integers (``budget_windows``) so that sums are
exact and a reservation is one conditional integer ``UPDATE`` (:mod:`aimesh.billing.budgets`).
"""

import re
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from aimesh.errors import InvalidInputError

NANO = 10**9
"""Nano-USD per USD: the unit of ``budget_windows``."""
USD_PLACES = 6
MAX_LIMIT_USD = Decimal("999999.999999")
"""Largest budget: under a million USD a day or month, so nano-USD sums fit in 64 bits."""


def to_nusd(usd: Decimal) -> int:
    """USD as nano-USD, rounded up: a cost is never under-counted."""
    return int((usd * NANO).to_integral_value(rounding=ROUND_CEILING))


def to_usd(nusd: int) -> Decimal:
    """Nano-USD as USD, exactly, without trailing zeros (``1500000000`` -> ``1.5``)."""
    whole, fraction = divmod(abs(nusd), NANO)
    digits = f"{whole}.{fraction:09d}".rstrip("0").rstrip(".")
    return Decimal(f"-{digits}" if nusd < 0 else digits)


def limit_nusd(limit_usd: Decimal) -> int:
    """A budget's limit in nano-USD, rounded down: a limit is never overstepped."""
    return int((limit_usd * NANO).to_integral_value(rounding=ROUND_FLOOR))


def window_start(period: str, at: datetime) -> datetime:
    """Start of the UTC calendar day or month holding ``at``."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "day" else day.replace(day=1)


def check_limit(limit_usd: Decimal) -> Decimal:
    """Return ``limit_usd`` if it is a usable budget limit.

    Raises:
        InvalidInputError: (field ``limit_usd``) not above 0, over :data:`MAX_LIMIT_USD`,
            or with more than 6 decimals.
    """
    allowed = f"above 0 and at most {MAX_LIMIT_USD} USD, with at most {USD_PLACES} decimals"
    if not limit_usd.is_finite() or not 0 < limit_usd <= MAX_LIMIT_USD:
        raise InvalidInputError("limit_usd", f"{limit_usd} is out of range", allowed)
    exponent = limit_usd.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -USD_PLACES:
        raise InvalidInputError("limit_usd", f"{limit_usd} has too many decimals", allowed)
    return limit_usd


LIMIT_PATTERN = (
    r"^(?:[1-9][0-9]{0,5}(?:\.[0-9]{1,6})?"
    r"|0\.(?:[1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}"
    r"|0000[1-9][0-9]?|00000[1-9]))$"
)
"""A limit as a decimal string: above 0, at most :data:`MAX_LIMIT_USD`, at most 6 decimals."""


def parse_limit(value: object) -> Decimal:
    """A budget limit from its decimal string (JSON numbers are binary floats: refused).

    Raises:
        InvalidInputError: (field ``limit_usd``) not such a string.
    """
    if not isinstance(value, str) or not re.match(LIMIT_PATTERN, value):
        raise InvalidInputError(
            "limit_usd",
            f"{value!r} is not a USD amount written as a decimal string",
            f'a string such as "25.50": above 0, at most {MAX_LIMIT_USD}, '
            f"at most {USD_PLACES} decimals",
        )
    return check_limit(Decimal(value))
