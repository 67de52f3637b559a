"""Paging of ranked lists (churn risks, billing anomalies): the bounds of one page."""

from aimesh.errors import InvalidInputError

MAX_PAGE = 500
"""Most rows one page of a ranking may hold."""


def check_page(limit: int, offset: int) -> None:
    """Check the bounds of one page of a ranking.

    Args:
        limit: Rows to return, 1 to :data:`MAX_PAGE`.
        offset: Rows to skip, >= 0 (past the end gives an empty page).

    Raises:
        InvalidInputError: ``limit`` or ``offset`` is out of range.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError("limit", f"{limit} is out of range", f"1 to {MAX_PAGE}")
    if offset < 0:
        raise InvalidInputError("offset", f"{offset} is negative", "an integer >= 0")
