"""What scoring a client book returns: typed figures, their provenance and their text.

Every result names the book version it read, whether that is the sample, and the model
version behind its figures; ``render()`` is the plain text an LLM reads (percentages with
one decimal, USD with cents, each figure as the model or the data gave it).
"""

from typing import Any, Literal

from pydantic import BaseModel, Field

from aimesh.ml.anomaly import BillingAnomaly
from aimesh.ml.churn import Driver
from aimesh.ml.pricing import PriceRecommendation
from aimesh.ml.registry import Trained
from aimesh.portfolio.book import BookInfo
from aimesh.portfolio.filters import Filters, format_filters


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


class Provenance(BaseModel):
    """The model and data behind a result.

    Attributes:
        model: Registry name of the model (``churn``, ``billing-anomaly``).
        model_version: The model card's version.
        dataset: What the model was trained on (e.g. ``client book v3 of acme``).
        data_sha256: SHA-256 of that data.
        method: One line on how the figures were computed.
        tenant: The book's tenant.
        book_version: The book version the figures are about (0 for the sample).
        sample: True when that book is the packaged sample, not the tenant's data.
        notes: What happened to the model on this load (e.g. retrained: file unreadable).
    """

    model: str
    model_version: str
    dataset: str
    data_sha256: str
    method: str = Field(description="How the figures were computed.")
    tenant: str
    book_version: int
    sample: bool
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, trained: Trained[Any], method: str, book: BookInfo) -> "Provenance":
        """Provenance of a figure computed with ``trained`` on ``book``."""
        card = trained.card
        return cls(
            model=card.name,
            model_version=card.version,
            dataset=card.dataset,
            data_sha256=card.data_sha256,
            method=method,
            tenant=book.tenant,
            book_version=book.version,
            sample=book.sample,
            notes=trained.notes,
        )

    def render(self) -> str:
        """One line naming the model version, its training data and the book scored."""
        scored = (
            "the sample data (not your client book)"
            if self.sample
            else f"client book v{self.book_version} of {self.tenant}"
        )
        notes = "".join(f" Note: {n}." for n in self.notes)
        return (
            f"Source: model {self.model_version} ({self.method}), trained on {self.dataset} "
            f"(data sha256 {self.data_sha256[:12]}), applied to {scored}.{notes}"
        )


class BookResult(BaseModel):
    """What every scoring result carries.

    Attributes:
        book_version: The book version scored (0 for the sample).
        sample: True when it is the packaged sample book.
        model_version: Version of the model behind the figures.
        provenance: Model, training data and book, in full.
    """

    book_version: int
    sample: bool
    model_version: str
    provenance: Provenance

    @classmethod
    def stamp(cls, trained: Trained[Any], method: str, book: BookInfo) -> dict[str, Any]:
        """The common fields of a result computed with ``trained`` on ``book``."""
        return {
            "book_version": book.version,
            "sample": book.sample,
            "model_version": trained.card.version,
            "provenance": Provenance.of(trained, method, book),
        }


class SegmentResult(BookResult):
    """A result about a segment of the book.

    Attributes:
        filters: The segment's filters as checked (column and values as the book spells
            them); empty for the whole book.
        matched: Clients in the segment.
        book_size: Clients in the book.
    """

    filters: Filters
    matched: int
    book_size: int

    def segment(self) -> str:
        """The segment in words, e.g. ``segment contract=Two year (812 of 7043 clients)``."""
        if not self.filters:
            return f"the whole book ({self.book_size} clients)"
        return (
            f"segment {format_filters(self.filters)} ({self.matched} of {self.book_size} clients)"
        )


class SegmentPage(SegmentResult):
    """One page of a ranking of a segment's clients.

    Attributes:
        offset: Clients of the segment's ranking skipped before this page.
    """

    offset: int

    def render_page(self, ranked_by: str, lines: list[str]) -> str:
        """A heading naming the ranks and the segment, one line per client, the source."""
        if not lines:
            head = f"No client ranked from {self.offset + 1} in {self.segment()}."
        else:
            ranks = f"{self.offset + 1}-{self.offset + len(lines)}"
            head = f"Clients ranked {ranks} by {ranked_by} in {self.segment()}:"
        return "\n".join([head, *lines, self.provenance.render()])


class ChurnDriver(BaseModel):
    """One feature's push on a client's churn risk.

    Attributes:
        feature: Feature (column) name.
        value: The client's value of it (text, number, None if missing).
        effect: ``raises`` or ``lowers`` the risk: the sign of ``contribution``.
        contribution: SHAP value in calibrated log-odds.
    """

    feature: str
    value: str | float | None
    effect: Literal["raises", "lowers"]
    contribution: float

    @classmethod
    def of(cls, driver: Driver) -> "ChurnDriver":
        """The driver with its effect in words (``contribution`` must not be 0)."""
        effect: Literal["raises", "lowers"] = "raises" if driver.contribution > 0 else "lowers"
        return cls(effect=effect, **driver.model_dump())

    def render(self) -> str:
        """E.g. ``contract=Month-to-month (raises risk)``."""
        return f"{self.feature}={plain(self.value)} ({self.effect} risk)"


class ClientRisk(BaseModel):
    """One client's churn risk.

    Attributes:
        rank: Position by churn probability, 1 = most likely to churn (within the segment
            for a ranking, within the book for one client).
        client_id: The client's id in the book.
        name: The client's name, None when the book has none.
        churn_probability: Calibrated probability of churn, 0-1.
        monthly_charges: USD per month, None when unknown.
        tenure_months: Months as a client, None when unknown.
        drivers: Up to three features pushing the risk most, largest ``|contribution|``
            first (features with no effect are left out).
    """

    rank: int
    client_id: str
    name: str | None
    churn_probability: float
    monthly_charges: float | None
    tenure_months: float | None
    drivers: list[ChurnDriver]

    def render(self) -> str:
        """One line: the figures and the reasons."""
        who = f"{self.client_id} ({self.name})" if self.name else self.client_id
        facts = [f"churn probability {pct(self.churn_probability)}"]
        if self.monthly_charges is not None:
            facts.append(f"{usd(self.monthly_charges)}/month")
        if self.tenure_months is not None:
            facts.append(f"tenure {months(self.tenure_months)}")
        reasons = ", ".join(d.render() for d in self.drivers) or "none"
        return f"#{self.rank} {who}: {'; '.join(facts)}; top drivers: {reasons}."


class ChurnRisks(SegmentPage):
    """A page of a segment's clients ranked by churn probability, highest first.

    Attributes:
        clients: The page; ``rank`` counts within the segment.
    """

    clients: list[ClientRisk]

    def render(self) -> str:
        """The ranked clients and the source."""
        return self.render_page("churn probability", [c.render() for c in self.clients])


class ClientChurn(BookResult):
    """One client's churn risk, ranked in the whole book.

    Attributes:
        client: The client; ``rank`` among the ``book_size`` clients, those that have not
            churned first (rank 1 is the first of :func:`~aimesh.portfolio.scoring.churn_risks`).
        book_size: Clients in the book.
    """

    client: ClientRisk
    book_size: int

    def render(self) -> str:
        """The client's line, its rank and the source."""
        ranked = f"Rank {self.client.rank} of the book's {self.book_size} clients by churn risk."
        return f"{self.client.render()} {ranked}\n{self.provenance.render()}"


class ChurnSummary(SegmentResult):
    """The churn outlook of a segment.

    Attributes:
        expected_churners: Sum of the segment's churn probabilities (clients).
        threshold: The probability ``share_above_threshold`` counts above.
        share_above_threshold: Share of the segment's clients with a churn probability
            above ``threshold``; None for an empty segment.
        monthly_revenue_at_risk: Sum of ``monthly_charges x churn probability`` (USD per
            month) over the clients with a price; None when the book has no
            ``monthly_charges``.
    """

    expected_churners: float
    threshold: float
    share_above_threshold: float | None
    monthly_revenue_at_risk: float | None

    def render(self) -> str:
        """The figures, what each sums, and the source."""
        parts = [
            f"Churn outlook of {self.segment()}: expected churners "
            f"{self.expected_churners:.1f} (sum of churn probabilities)"
        ]
        if self.share_above_threshold is not None:
            parts.append(
                f"{pct(self.share_above_threshold)} of them have a churn probability above "
                f"{pct(self.threshold)}"
            )
        if self.monthly_revenue_at_risk is not None:
            parts.append(
                f"monthly revenue at risk {usd(self.monthly_revenue_at_risk)}/month "
                "(sum of monthly charges x churn probability)"
            )
        return f"{'; '.join(parts)}.\n{self.provenance.render()}"


def render_anomaly(anomaly: BillingAnomaly) -> str:
    """One line: the client, its bill and what is out of line."""
    reasons = ", ".join(
        f"{d.feature}={d.value:.2f} vs typical {d.typical:.2f} (z={d.robust_z:+.1f})"
        for d in anomaly.reasons
    )
    facts = [f"anomaly score {anomaly.score:.3f}"]
    if anomaly.monthly_charges is not None:
        facts.append(f"{usd(anomaly.monthly_charges)}/month")
    if anomaly.total_charges is not None:
        facts.append(f"{usd(anomaly.total_charges)} billed in total")
    if anomaly.tenure_months is not None:
        facts.append(f"tenure {months(anomaly.tenure_months)}")
    return f"#{anomaly.rank} {anomaly.client_id}: {'; '.join(facts)}; out of line: {reasons}."


class BillingAnomalies(SegmentPage):
    """A page of a segment's clients ranked by billing anomaly score, most anomalous first.

    Attributes:
        anomalies: The page; ``rank`` counts within the segment.
    """

    anomalies: list[BillingAnomaly]

    def render(self) -> str:
        """The ranked anomalies and the source."""
        return self.render_page("billing anomaly score", [*map(render_anomaly, self.anomalies)])


def render_recommendation(r: PriceRecommendation) -> str:
    """The recommendation with its churn and revenue effects, in words."""
    constraint = "churn risk may not rise" if r.max_churn_increase == 0 else r.constraint
    return (
        f"Price recommendation for {r.client_id} (searched +-{pct(r.max_change)}, "
        f"{constraint}): current {usd(r.current_price)}/month, recommended "
        f"{usd(r.recommended_price)}/month ({r.change_pct:+.1f}%). Churn probability "
        f"{pct(r.churn_probability_now)} now, {pct(r.churn_probability_at_recommended)} at "
        f"the recommended price ({r.churn_risk_change * 100:+.1f} points). Expected revenue "
        f"{usd(r.expected_revenue_now)}/month now, {usd(r.expected_revenue_at_recommended)}"
        f"/month at the recommended price ({usd(r.expected_revenue_change)}/month, "
        f"{r.expected_revenue_change_pct:+.1f}%)."
    )


class PriceAdvice(BookResult):
    """A client's revenue-maximising monthly price.

    Attributes:
        recommendation: The search's result (USD per month, probabilities 0-1).
    """

    recommendation: PriceRecommendation

    def render(self) -> str:
        """The recommendation with its churn and revenue effects, and the source."""
        return f"{render_recommendation(self.recommendation)}\n{self.provenance.render()}"


class PriceChangeImpact(SegmentResult):
    """What changing a segment's monthly prices by a percentage would do, by the churn model.

    Expected revenue is ``sum(price x (1 - churn probability))`` over the clients with a
    price (USD per month); after the change, prices are ``price x (1 + change_pct / 100)``
    rounded to cents and the churn model re-scores every client at its new price (churn
    risk cannot fall as the price rises: the model is monotone in ``monthly_charges``).

    Attributes:
        change_pct: The price change, percent.
        priced: Clients of the segment with a monthly price (the revenue sums' clients).
        revenue_before: Expected monthly revenue now, USD per month.
        revenue_after: Expected monthly revenue after the change, USD per month.
        revenue_change: ``revenue_after - revenue_before``.
        revenue_change_pct: That change in percent of ``revenue_before``; None when it is 0.
        churners_before: Expected churners now (sum of churn probabilities).
        churners_after: Expected churners after the change.
    """

    change_pct: float
    priced: int
    revenue_before: float
    revenue_after: float
    revenue_change: float
    revenue_change_pct: float | None
    churners_before: float
    churners_after: float

    def render(self) -> str:
        """The before and after figures, and the source."""
        change = "" if self.revenue_change_pct is None else f", {self.revenue_change_pct:+.1f}%"
        return (
            f"Changing monthly prices by {self.change_pct:+g}% in {self.segment()}: expected "
            f"monthly revenue {usd(self.revenue_before)}/month now, {usd(self.revenue_after)}"
            f"/month after ({usd(self.revenue_change)}/month{change}; {self.priced} clients "
            f"with a price); expected churners {self.churners_before:.1f} now, "
            f"{self.churners_after:.1f} after.\n{self.provenance.render()}"
        )
