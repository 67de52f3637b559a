"""How findings are worded: figures formatted, and direction words computed by code.

A :class:`Finding` is one line an LLM reads, with the direction words it states as
``facts`` so an answer can be checked against them without parsing prose (see
:mod:`aimesh.graphs.faithfulness`). The words come from rules over the model's figures and
the book's own data, never from the LLM.
"""

from typing import Literal

from pydantic import BaseModel, Field

ChurnLevel = Literal["high", "moderate", "low"]
"""A churn probability relative to the book's: see :meth:`ChurnScale.level`."""

FeatureLevel = Literal["short", "long", "low", "high", "typical"]
"""A numeric value relative to the book's median: see :func:`feature_level`."""

Effect = Literal["raises", "lowers"]
"""Which way a driver pushes the churn risk (the sign of its SHAP value)."""

PriceMove = Literal["raise", "cut", "keep"]
"""A price change in words: see :func:`price_move`."""

TOP_SHARE = 0.1
"""Share of the book's clients whose churn probability counts as ``high`` (top decile)."""

CHURN = "churn"
"""The ``facts`` subject of a client's churn level."""

PRICE = "price"
"""The ``facts`` subject of a recommended or evaluated price change."""

BILLING = "billing"
"""The ``facts`` subject of one client's billing verdict: ``out of line`` or ``in line``."""

CHURN_CHANGE = "churn.change"
"""The ``facts`` subject of how a price change moves churn risk: see :func:`churn_change`."""


class Finding(BaseModel):
    """One line of a result as the LLM reads it, with the direction words it states.

    Attributes:
        client_id: The client the line is about; None for a heading, a segment's figures
            or the source.
        text: The line.
        facts: Direction word by subject: ``churn`` -> ``high``/``moderate``/``low``; a
            driver feature (``contract``) -> ``raises``/``lowers``; ``<feature>.level``
            (``tenure_months.level``) -> ``short``/``long``/``low``/``high``/``typical``;
            ``price`` -> ``raise``/``cut``/``keep``; ``churn.change`` (a price change's
            effect on churn risk) -> ``raises``/``lowers``/``keeps``; ``billing`` (one
            client's check) -> ``out of line``/``in line``.
    """

    client_id: str | None = None
    text: str
    facts: dict[str, str] = Field(default_factory=dict)


class ChurnScale(BaseModel):
    """The book's churn probabilities a client's is compared with.

    Computed over the book's clients not known to have churned (those the rankings rank),
    from the churn model's probabilities.

    Attributes:
        clients: Clients the figures are over.
        median: Their median churn probability, 0-1.
        top_decile: The probability from which a client is in their top 10%, 0-1 (the
            90th percentile).
    """

    clients: int
    median: float
    top_decile: float

    def level(self, probability: float) -> ChurnLevel:
        """``high`` from the top decile up, ``low`` below the median, else ``moderate``."""
        if probability >= self.top_decile:
            return "high"
        return "low" if probability < self.median else "moderate"


def level_key(feature: str) -> str:
    """The ``facts`` subject of a feature's level (``tenure_months.level``)."""
    return f"{feature}.level"


def feature_level(feature: str, value: float, median: float) -> FeatureLevel:
    """A numeric value against the book's median of its column.

    ``short``/``long`` for ``tenure_months`` (below/above the median), ``low``/``high`` for
    any other feature, ``typical`` when equal to the median.
    """
    if value == median:
        return "typical"
    below = value < median
    if feature == "tenure_months":
        return "short" if below else "long"
    return "low" if below else "high"


def price_move(change_pct: float) -> PriceMove:
    """``raise``, ``cut`` or ``keep`` for a price change in percent (0.0 as printed: keep)."""
    if round(change_pct, 1) == 0:
        return "keep"
    return "raise" if change_pct > 0 else "cut"


def churn_change(change: float) -> Effect | Literal["keeps"]:
    """How a printed change of churn reads: ``keeps`` when it prints as 0.0 (one decimal).

    Args:
        change: The change as the finding prints it with one decimal (percentage points
            of churn probability, or expected churners).
    """
    if round(change, 1) == 0:
        return "keeps"
    return "raises" if change > 0 else "lowers"


def spoken(feature: str) -> str:
    """A feature's name as the findings write it: ``tenure_months`` -> ``tenure``."""
    return feature.removesuffix("_months").replace("_", " ")


def pct(fraction: float) -> str:
    """Format a fraction as a percentage with one decimal (0.8734 -> '87.3%')."""
    return f"{fraction * 100:.1f}%"


def usd(amount: float) -> str:
    """Format an amount in USD with cents (95.1 -> '$95.10', -3 -> '-$3.00')."""
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"


def plain(value: str | float | None) -> str:
    """A value as people write it: text as is, ``12.0`` -> ``12``, ``29.85`` -> ``29.85``."""
    if value is None:
        return "missing"
    return f"{value:.10g}" if isinstance(value, float | int) else str(value)


def months(count: float) -> str:
    """A number of months in words (1 -> '1 month', 70 -> '70 months')."""
    return f"{plain(count)} month" if count == 1 else f"{plain(count)} months"


def amount(feature: str, value: float) -> str:
    """A feature's value in its unit: USD for ``*charges``, months for ``tenure_months``.

    Other numbers are rounded to cents (``40.2345`` -> ``40.23``).
    """
    if feature.endswith("charges"):
        return usd(value)
    return months(value) if feature == "tenure_months" else plain(round(value, 2))
