"""What scoring a client book returns: typed figures, their provenance and their findings.

Every result names the book version it read, whether that is the sample, and the model
version behind its figures. Its ``findings`` are the lines an LLM reads, each client's
figures under its id with direction words computed by code (see
:mod:`aimesh.portfolio.wording`); ``render()`` joins them. Percentages have one decimal, USD
cents, each figure as the model or the data gave it; the fields hold every figure in full.
"""

from typing import Any

from pydantic import BaseModel, Field, computed_field

from aimesh.ml.anomaly import BillingAnomaly
from aimesh.ml.churn import Driver
from aimesh.ml.pricing import PriceRecommendation
from aimesh.ml.registry import Trained
from aimesh.portfolio.book import BookInfo
from aimesh.portfolio.filters import Filters, format_filters
from aimesh.portfolio.wording import (
    BILLING,
    CHURN,
    CHURN_CHANGE,
    PRICE,
    TOP_SHARE,
    ChurnLevel,
    ChurnScale,
    Effect,
    FeatureLevel,
    Finding,
    amount,
    churn_change,
    feature_level,
    level_key,
    months,
    pct,
    plain,
    price_move,
    spoken,
    usd,
)


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
        """One short line naming the model version and the book scored, with any notes."""
        scored = (
            "the sample data (not your client book)"
            if self.sample
            else f"{self.tenant}'s client book v{self.book_version}"
        )
        notes = "".join(f" Note: {n}." for n in self.notes)
        return f"Source: {self.model} model {self.model_version} on {scored}.{notes}"


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

    @computed_field  # type: ignore[prop-decorator]
    @property
    def findings(self) -> list[Finding]:
        """The lines an LLM reads: the result's statements, then the source."""
        return [*self.statements(), Finding(text=self.provenance.render())]

    def statements(self) -> list[Finding]:
        """The result's figures in words, one finding per client or per segment."""
        raise NotImplementedError

    def render(self) -> str:
        """The findings' text, one per line."""
        return "\n".join(f.text for f in self.findings)


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

    def heading(self, ranked_by: str, shown: int) -> Finding:
        """The line naming the ranks and the segment (or that the page is empty)."""
        if not shown:
            return Finding(text=f"No client ranked from {self.offset + 1} in {self.segment()}.")
        ranks = f"{self.offset + 1}-{self.offset + shown}"
        return Finding(text=f"Clients ranked {ranks} by {ranked_by} in {self.segment()}:")


class ChurnDriver(BaseModel):
    """One feature's push on a client's churn risk.

    Attributes:
        feature: Feature (column) name.
        value: The client's value of it (text, number, None if missing).
        effect: ``raises`` or ``lowers`` the risk: the sign of ``contribution``.
        contribution: SHAP value in calibrated log-odds.
        median: The book's median of a numeric feature (over all its clients); None for
            a category.
        level: The value against that median (see
            :func:`~aimesh.portfolio.wording.feature_level`); None for a category or a
            missing value.
    """

    feature: str
    value: str | float | None
    effect: Effect
    contribution: float
    median: float | None = None
    level: FeatureLevel | None = None

    @classmethod
    def of(cls, driver: Driver, median: float | None) -> "ChurnDriver":
        """The driver with its effect and level in words (``contribution`` must not be 0).

        Args:
            driver: The model's explanation of one feature.
            median: The book's median of the feature, None for a category.
        """
        effect: Effect = "raises" if driver.contribution > 0 else "lowers"
        level = None
        if median is not None and isinstance(driver.value, float | int):
            level = feature_level(driver.feature, driver.value, median)
        return cls(effect=effect, median=median, level=level, **driver.model_dump())

    def render(self) -> str:
        """E.g. ``tenure 1 month (short, book median 29 months): raises churn risk``."""
        value = self.value
        shown = amount(self.feature, value) if isinstance(value, float | int) else plain(value)
        if self.level is not None and self.median is not None:
            median = amount(self.feature, self.median)
            shown += f" ({self.level}, book median {median})"
        return f"{spoken(self.feature)} {shown}: {self.effect} churn risk"

    def facts(self) -> dict[str, str]:
        """The driver's effect, and its level when it has one."""
        facts: dict[str, str] = {self.feature: self.effect}
        if self.level is not None:
            facts[level_key(self.feature)] = self.level
        return facts


class ClientRisk(BaseModel):
    """One client's churn risk.

    Attributes:
        rank: Position by churn probability, 1 = most likely to churn (within the segment
            for a ranking, within the book for one client).
        client_id: The client's id in the book.
        name: The client's name, None when the book has none.
        churn_probability: Calibrated probability of churn, 0-1.
        churn_level: That probability against the book's (see
            :meth:`~aimesh.portfolio.wording.ChurnScale.level`).
        monthly_charges: USD per month, None when unknown.
        tenure_months: Months as a client, None when unknown.
        drivers: Up to three features pushing the risk most, largest ``|contribution|``
            first (features with no effect are left out).
    """

    rank: int
    client_id: str
    name: str | None
    churn_probability: float
    churn_level: ChurnLevel
    monthly_charges: float | None
    tenure_months: float | None
    drivers: list[ChurnDriver]

    def finding(self, ranked_among: int) -> Finding:
        """The client's line: probability and level, rank, price, tenure and drivers.

        Args:
            ranked_among: Clients ``rank`` counts among.
        """
        who = f"{self.client_id} ({self.name})" if self.name else self.client_id
        level = {
            "high": f"high: top {TOP_SHARE:.0%} of the book",
            "moderate": "moderate",
            "low": "low: below the book's median",
        }[self.churn_level]
        parts = [
            f"{who}: churn probability {pct(self.churn_probability)} ({level}), "
            f"rank {self.rank} of {ranked_among}"
        ]
        explained = {d.feature for d in self.drivers}
        if self.monthly_charges is not None and "monthly_charges" not in explained:
            parts.append(f"{usd(self.monthly_charges)}/month")
        if self.tenure_months is not None and "tenure_months" not in explained:
            parts.append(f"tenure {months(self.tenure_months)}")
        parts.append("drivers: " + ("; ".join(d.render() for d in self.drivers) or "none"))
        facts: dict[str, str] = {CHURN: self.churn_level}
        for driver in self.drivers:
            facts |= driver.facts()
        return Finding(client_id=self.client_id, text="; ".join(parts) + ".", facts=facts)


def scale_finding(scale: ChurnScale) -> Finding:
    """The line giving the figures the churn levels compare with."""
    return Finding(
        text=f"Churn levels compare with the book's {scale.clients} current clients: median "
        f"{pct(scale.median)}, top {TOP_SHARE:.0%} from {pct(scale.top_decile)}."
    )


class ChurnRisks(SegmentPage):
    """A page of a segment's clients ranked by churn probability, highest first.

    Attributes:
        clients: The page; ``rank`` counts within the segment.
        churn_scale: The book's figures each client's ``churn_level`` compares with.
    """

    clients: list[ClientRisk]
    churn_scale: ChurnScale

    def statements(self) -> list[Finding]:
        """The heading, one finding per client, and the churn scale."""
        clients = [c.finding(self.matched) for c in self.clients]
        return [self.heading("churn probability", len(clients)), *clients] + (
            [scale_finding(self.churn_scale)] if clients else []
        )


class ClientChurn(BookResult):
    """One client's churn risk, ranked in the whole book.

    Attributes:
        client: The client; ``rank`` among the ``book_size`` clients, those that have not
            churned first (rank 1 is the first of :func:`~aimesh.portfolio.scoring.churn_risks`).
        book_size: Clients in the book.
        churn_scale: The book's figures the client's ``churn_level`` compares with.
    """

    client: ClientRisk
    book_size: int
    churn_scale: ChurnScale

    def statements(self) -> list[Finding]:
        """The client's finding and the churn scale."""
        return [self.client.finding(self.book_size), scale_finding(self.churn_scale)]


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

    def statements(self) -> list[Finding]:
        """The figures and what each sums, in one finding."""
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
        return [Finding(text="; ".join(parts) + ".")]


def anomaly_finding(anomaly: BillingAnomaly, label: str = "out of line") -> Finding:
    """The client's line: its score and rank, its bill, and what is out of line.

    Each reason reads ``monthly_charges $118.75 vs typical $70.35 (higher)``, after
    ``label``; its level (``high``/``low`` against the typical value) is a fact of the
    finding.
    """
    facts = [f"anomaly score {anomaly.score:.3f}, rank {anomaly.rank}"]
    if anomaly.monthly_charges is not None:
        facts.append(f"{usd(anomaly.monthly_charges)}/month")
    if anomaly.total_charges is not None:
        facts.append(f"{usd(anomaly.total_charges)} billed in total")
    if anomaly.tenure_months is not None:
        facts.append(f"tenure {months(anomaly.tenure_months)}")
    levels = {d.feature: feature_level(d.feature, d.value, d.typical) for d in anomaly.reasons}
    reasons = ", ".join(
        f"{d.feature} {amount(d.feature, d.value)} vs typical {amount(d.feature, d.typical)} "
        f"({_comparative(levels[d.feature])})"
        for d in anomaly.reasons
    )
    return Finding(
        client_id=anomaly.client_id,
        text=f"{anomaly.client_id}: {'; '.join(facts)}; {label}: {reasons or 'none'}.",
        facts={level_key(feature): level for feature, level in levels.items()},
    )


def _comparative(level: FeatureLevel) -> str:
    """``higher``, ``lower`` or ``typical`` for a value against a typical one."""
    return {"high": "higher", "long": "higher", "low": "lower", "short": "lower"}.get(
        level, "typical"
    )


class BillingAnomalies(SegmentPage):
    """A page of a segment's clients ranked by billing anomaly score, most anomalous first.

    Attributes:
        anomalies: The page; ``rank`` counts within the segment.
    """

    anomalies: list[BillingAnomaly]

    def statements(self) -> list[Finding]:
        """The heading and one finding per client."""
        clients = [anomaly_finding(a) for a in self.anomalies]
        return [self.heading("billing anomaly score", len(clients)), *clients]


ANOMALY_RULE = 0.5
"""Isolation Forest scores above this are anomalous (Liu, Ting and Zhou, 2008)."""


class ClientBilling(BookResult):
    """One client's billing anomaly score, ranked in the whole book.

    Attributes:
        anomaly: The client's score (0-1), rank among ``book_size`` clients (1 = most
            anomalous) and the billing features furthest from typical.
        book_size: Clients in the book.
    """

    anomaly: BillingAnomaly
    book_size: int

    def statements(self) -> list[Finding]:
        """The client's line, then whether the score is out of line by the paper's rule."""
        anomalous = self.anomaly.score > ANOMALY_RULE
        verdict = "out of line" if anomalous else "in line"
        line = anomaly_finding(self.anomaly, "furthest from typical")
        text = (
            f"{line.text.removesuffix('.')}; ranked among {self.book_size} clients; billing "
            f"{verdict}: {'anomalous' if anomalous else 'not anomalous'} (a score above "
            f"{ANOMALY_RULE} is anomalous by the Isolation Forest paper's rule)."
        )
        facts = {**line.facts, BILLING: verdict}
        return [line.model_copy(update={"text": text, "facts": facts})]


def recommendation_finding(r: PriceRecommendation) -> Finding:
    """The recommendation in words (``price raise of 7.1%``), with its churn and revenue effects.

    The move (``raise``/``cut``/``keep``, :func:`~aimesh.portfolio.wording.price_move`) is
    the finding's ``price`` fact; what it does to the churn probability as printed
    (:func:`~aimesh.portfolio.wording.churn_change`) its ``churn.change`` fact.
    """
    move = price_move(r.change_pct)
    constraint = "churn risk may not rise" if r.max_churn_increase == 0 else r.constraint
    change = (
        "keep the current price"
        if move == "keep"
        else f"price {move} of {abs(r.change_pct):.1f}% from {usd(r.current_price)}/month"
    )
    churn = churn_change(r.churn_risk_change * 100)
    now, then = pct(r.churn_probability_now), pct(r.churn_probability_at_recommended)
    moved = (
        f"unchanged at {now}"
        if churn == "keeps"
        else f"{'rises' if churn == 'raises' else 'falls'} from {now} now to {then} at the "
        "recommended price"
    )
    text = (
        f"{r.client_id}: recommended price {usd(r.recommended_price)}/month, {change} "
        f"(searched +-{pct(r.max_change)}, {constraint}); churn probability {moved} "
        f"({r.churn_risk_change * 100:+.1f} points); expected revenue "
        f"{usd(r.expected_revenue_now)}/month now, {usd(r.expected_revenue_at_recommended)}"
        f"/month at the recommended price ({usd(r.expected_revenue_change)}/month, "
        f"{r.expected_revenue_change_pct:+.1f}%)."
    )
    return Finding(client_id=r.client_id, text=text, facts={PRICE: move, CHURN_CHANGE: churn})


class PriceAdvice(BookResult):
    """A client's revenue-maximising monthly price.

    Attributes:
        recommendation: The search's result (USD per month, probabilities 0-1).
    """

    recommendation: PriceRecommendation

    def statements(self) -> list[Finding]:
        """The recommendation's finding."""
        return [recommendation_finding(self.recommendation)]


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

    def statements(self) -> list[Finding]:
        """The change in words (``Price raise of 5.0%``) with the before and after figures.

        The move is the finding's ``price`` fact; what it does to the expected churners as
        printed, its ``churn.change`` fact.
        """
        move = price_move(self.change_pct)
        change = (
            "No price change" if move == "keep" else f"Price {move} of {abs(self.change_pct):.1f}%"
        )
        percent = "" if self.revenue_change_pct is None else f", {self.revenue_change_pct:+.1f}%"
        text = (
            f"{change} in {self.segment()}: expected monthly revenue "
            f"{usd(self.revenue_before)}/month now, {usd(self.revenue_after)}/month after "
            f"({usd(self.revenue_change)}/month{percent}; {self.priced} clients with a price); "
            f"expected churners {self.churners_before:.1f} now, {self.churners_after:.1f} after "
            f"({self.churners_after - self.churners_before:+.1f})."
        )
        churn = churn_change(self.churners_after - self.churners_before)
        return [Finding(text=text, facts={PRICE: move, CHURN_CHANGE: churn})]
