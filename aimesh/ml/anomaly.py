"""Anomaly detection with reasons, and its use on a client book's billing.

:class:`AnomalyDetector` is generic: an Isolation Forest (Liu, Ting & Zhou 2008) on
robust-scaled numeric features, explained by robust z-scores. It is evaluated on the
labelled Statlog Shuttle data (:func:`train_labelled_detector`) and used, unsupervised, on
billing features engineered from any client book that has ``monthly_charges``
(:func:`billing_features`) to find revenue leaks and billing errors.
"""

import time
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LinearRegression

from aimesh.errors import InvalidInputError
from aimesh.ml.metrics import ranking_metrics
from aimesh.ml.paging import check_page
from aimesh.ml.registry import ModelCard
from aimesh.ml.tabular import encode_binary_target, require_columns

MAD_TO_SD = 1.4826
"""MAD -> standard deviation under normality (Rousseeuw & Croux 1993)."""

MEAN_AD_TO_SD = 1.2533
"""Mean absolute deviation -> standard deviation under normality, sqrt(pi/2); the fallback
scale when the MAD is 0 (as in the modified z-score of Iglewicz & Hoaglin 1993)."""

BOOK_FIELDS = ("churned", "name", "monthly_charges", "tenure_months", "total_charges")
"""A client book's mapped fields (:mod:`aimesh.portfolio.book`): never peer attributes."""

MAX_PEER_LEVELS = 50
"""Most distinct values of a text column used as a peer attribute (a client book's
``category`` columns; more makes it ``text``: names, e-mails, free text)."""


class Deviation(BaseModel):
    """How far one feature of a row is from typical.

    Attributes:
        feature: Feature name.
        value: The row's value.
        typical: The feature's median over the training rows.
        robust_z: ``(value - typical) / scale``, signed; ``scale`` is 1.4826 x MAD (a robust
            standard deviation), or 1.2533 x mean absolute deviation when the MAD is 0.
    """

    feature: str
    value: float
    typical: float
    robust_z: float


class BillingAnomaly(BaseModel):
    """A client whose billing looks unusual.

    Attributes:
        client_id: The client's id in the book.
        rank: 1 = most anomalous client of the rows ranked.
        score: Isolation Forest anomaly score in (0, 1]; above 0.5 is anomalous by the
            paper's rule of thumb.
        reasons: Billing features furthest from typical, largest ``|robust_z|`` first.
        monthly_charges: USD per month; None when the client has none.
        total_charges: USD billed so far (0 where the book has it empty, as
            ``billing_gap`` counts it); None when the book has no ``total_charges``.
        tenure_months: Months as a client; None when unknown or not in the book.
    """

    client_id: str
    rank: int
    score: float
    reasons: list[Deviation]
    monthly_charges: float | None
    total_charges: float | None
    tenure_months: float | None


class AnomalyDetector:
    """Isolation Forest on robust-scaled numeric features.

    Each feature is centred on its median and divided by its robust scale (see
    :class:`Deviation`); missing values are imputed with the median (z = 0).

    Args:
        n_estimators: Trees in the forest.
        seed: Random seed.
    """

    def __init__(self, n_estimators: int = 200, seed: int = 42) -> None:
        self.n_estimators = n_estimators
        self.seed = seed
        self.features: list[str] = []
        self.median = np.empty(0)
        self.scale = np.empty(0)
        self._forest: Any = None

    def get_params(self) -> dict[str, int]:
        """Return the hyper-parameters given to the constructor (scikit-learn style)."""
        return {"n_estimators": self.n_estimators, "seed": self.seed}

    def fit(self, X: pd.DataFrame) -> "AnomalyDetector":
        """Learn the medians, scales and the forest.

        Args:
            X: Numeric features, shape (n_rows, n_features).

        Returns:
            self, fitted.

        Raises:
            InvalidInputError: A column is not numeric.
        """
        values = _numeric_matrix(X)
        self.features = [str(name) for name in X.columns]
        self.median = np.nanmedian(values, axis=0)
        self.scale = _robust_scale(values, self.median)
        self._forest = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed)
        self._forest.fit(self._scaled(values))
        return self

    def robust_z(self, X: pd.DataFrame) -> np.ndarray:
        """Signed robust z-scores, shape (n_rows, n_features); NaN where a value is missing.

        Raises:
            InvalidInputError: A feature column is missing or not numeric.
        """
        return self._z(self._values(X))

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """Anomaly score of each row, shape (n_rows,), in (0, 1]; higher = more anomalous.

        The score is ``2 ** (-E[h(x)] / c(n))`` of Liu et al. (2008), ``h`` the path
        length of the row in a tree: the negation of scikit-learn's ``score_samples``.

        Raises:
            InvalidInputError: A feature column is missing or not numeric.
        """
        scaled = self._scaled(self._values(X))
        return np.asarray(-self._forest.score_samples(scaled))

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[Deviation]]:
        """The features that make each row unusual: largest ``|robust_z|`` first.

        Args:
            X: Rows with the fitted feature columns.
            top_k: Deviations per row.

        Returns:
            One list of at most ``top_k`` deviations per row (missing values are skipped).

        Raises:
            InvalidInputError: ``top_k`` < 1, or a feature column is missing or not numeric.
        """
        if top_k < 1:
            raise InvalidInputError("top_k", f"{top_k} is below 1", "an integer >= 1")
        values = self._values(X)
        z = self._z(values)
        order = np.argsort(-np.nan_to_num(np.abs(z), nan=-1.0), axis=1, kind="stable")
        return [
            [
                Deviation(
                    feature=self.features[j],
                    value=float(values[i, j]),
                    typical=float(self.median[j]),
                    robust_z=float(z[i, j]),
                )
                for j in order[i, :top_k]
                if not np.isnan(values[i, j])
            ]
            for i in range(len(values))
        ]

    def _values(self, X: pd.DataFrame) -> np.ndarray:
        if self._forest is None:
            raise InvalidInputError("detector", "the detector is not fitted", "call fit first")
        missing = [name for name in self.features if name not in X.columns]
        if missing:
            raise InvalidInputError(
                "X", f"missing feature column(s) {missing}", f"columns {self.features}"
            )
        return _numeric_matrix(X[self.features])

    def _z(self, values: np.ndarray) -> np.ndarray:
        return (values - self.median) / self.scale

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        return np.nan_to_num(self._z(values), nan=0.0)


def billing_features(book: pd.DataFrame) -> pd.DataFrame:
    """Billing features of each client of a client book, to find revenue leaks and errors.

    Uses what the book records; only ``monthly_charges`` is required.

    - ``monthly_charges``: USD per month, as billed.
    - ``tenure_months``: months as a client, when the book has ``tenure_months``.
    - ``billing_gap``: ``total_charges - monthly_charges * tenure_months`` (USD), when the
      book has both; an empty ``total_charges`` (new clients) counts as 0. What was billed
      minus what the current price implies: near 0 when the history matches the price,
      very negative suggests under-billing (a revenue leak), very positive over-billing
      (or a large past price change). A USD gap rather than a ratio, so that a few
      dollars' noise on a 2-month client does not outrank hundreds on a long-time one.
    - ``price_residual``: ``monthly_charges`` minus its least-squares fit on the book's
      peer attributes (see :func:`peer_attributes`), USD per month: a client paying much
      more or less than clients with the same services and usage. Only when the book has
      a peer attribute; NaN where ``monthly_charges`` is.

    A count of services (the Telco-only ``n_services`` of earlier versions) is not
    computed: nothing in a book tells a service column from any other category.

    Args:
        book: The client table (:class:`~aimesh.portfolio.book.ClientBook` frame shape:
            mapped fields under their field names, features as float64 or strings).

    Returns:
        Shape (n_clients, 1 to 4), the columns above that apply, in that order, same index
        as ``book``.

    Raises:
        DataFileError: The book has no ``monthly_charges`` column.
    """
    require_columns(book, ["monthly_charges"], "client book")
    monthly = book["monthly_charges"].astype(float)
    features = {"monthly_charges": monthly}
    if "tenure_months" in book.columns:
        tenure = book["tenure_months"].astype(float)
        features["tenure_months"] = tenure
        if "total_charges" in book.columns:
            total = book["total_charges"].astype(float).fillna(0.0)
            features["billing_gap"] = total - monthly * tenure
    peers = peer_attributes(book)
    if peers.shape[1]:
        features["price_residual"] = monthly - _peer_price(peers, monthly)
    return pd.DataFrame(features, index=book.index)


def peer_columns(book: pd.DataFrame) -> list[str]:
    """The columns of a book that describe a client's services and usage.

    Every column but :data:`BOOK_FIELDS` with at least two distinct values that is a number
    or text with at most :data:`MAX_PEER_LEVELS` values (more: names, e-mails, free text).

    Args:
        book: The client table.

    Returns:
        Their names, in the book's order.
    """
    return [
        str(name)
        for name in book.columns
        if name not in BOOK_FIELDS
        and book[name].nunique(dropna=True) >= 2
        and (
            pd.api.types.is_numeric_dtype(book[name])
            or book[name].nunique(dropna=True) <= MAX_PEER_LEVELS
        )
    ]


def peer_attributes(book: pd.DataFrame) -> pd.DataFrame:
    """The design matrix of the peer price fit, from :func:`peer_columns`.

    Numbers as they are (NaN -> the column's median); text one-hot encoded (first level
    dropped; missing is a level of its own).

    Args:
        book: The client table.

    Returns:
        Float matrix, shape (n_clients, n_terms), same index as ``book``; no columns when
        the book has no peer column.
    """
    numbers: dict[str, pd.Series] = {}
    levels: dict[str, pd.Series] = {}
    for name in peer_columns(book):
        values = book[name]
        if pd.api.types.is_numeric_dtype(values):
            numbers[name] = values.astype(float).fillna(values.median())
        else:
            levels[name] = values.astype(str).where(values.notna(), "(missing)")
    matrix = pd.DataFrame(numbers, index=book.index)
    if not levels:
        return matrix
    dummies = pd.get_dummies(pd.DataFrame(levels, index=book.index), drop_first=True, dtype=float)
    return pd.concat([matrix, dummies], axis=1)


def score_billing(detector: AnomalyDetector, book: pd.DataFrame) -> pd.DataFrame:
    """Billing features of every client plus their anomaly ``score``.

    Args:
        detector: A detector fitted on :func:`billing_features` of this book.
        book: The client table.

    Returns:
        :func:`billing_features` with a ``score`` column, same index as ``book``.
    """
    features = billing_features(book)
    return features.assign(score=detector.score_samples(features))


def rank_billing_anomalies(
    detector: AnomalyDetector,
    book: pd.DataFrame,
    limit: int = 10,
    offset: int = 0,
    *,
    scored: pd.DataFrame | None = None,
) -> list[BillingAnomaly]:
    """The most anomalous billing among some clients, most anomalous first.

    Args:
        detector: A detector fitted on :func:`billing_features`.
        book: The clients to rank (the whole book, or a segment of it with ``scored``).
        limit: Clients to return, 1 to :data:`~aimesh.ml.paging.MAX_PAGE`.
        offset: Clients to skip (for paging); past the end gives an empty list.
        scored: :func:`score_billing` rows of these clients, to reuse (e.g. the whole
            book's scores, cut to a segment); computed from ``book`` when omitted.

    Returns:
        Up to ``limit`` anomalies, ranks ``offset + 1`` onwards; equal scores keep the
        book's order.

    Raises:
        InvalidInputError: ``limit`` or ``offset`` is out of range.
    """
    check_page(limit, offset)
    table = score_billing(detector, book) if scored is None else scored
    order = np.argsort(-table["score"].to_numpy(), kind="stable")[offset : offset + limit]
    page = table.iloc[order]
    rows = book.loc[page.index]
    reasons = detector.explain(page)
    total = rows["total_charges"].fillna(0.0) if "total_charges" in rows.columns else None
    return [
        BillingAnomaly(
            client_id=str(client),
            rank=offset + position + 1,
            score=float(page["score"].iloc[position]),
            reasons=reasons[position],
            monthly_charges=_number(rows, "monthly_charges", position),
            total_charges=None if total is None else float(total.iloc[position]),
            tenure_months=_number(rows, "tenure_months", position),
        )
        for position, client in enumerate(page.index)
    ]


def train_billing_detector(
    book: pd.DataFrame,
    seed: int = 42,
    *,
    name: str = "billing-anomaly",
    dataset: str = "",
    data_sha256: str = "",
) -> tuple[AnomalyDetector, ModelCard]:
    """Fit the billing detector on a client book's :func:`billing_features`.

    The book has no anomaly labels, so the card's metrics describe the in-sample score
    distribution: quantiles ``score_p50``, ``score_p90``, ``score_p99``, ``score_max``, and
    ``share_above_0_5``, the share of clients scoring above 0.5 (the paper's anomaly rule,
    also scikit-learn's ``contamination="auto"`` threshold). The card's ``features`` are
    the billing features this book allows; its ``evaluation`` names the peer attributes
    of ``price_residual``.

    Args:
        book: The client table.
        seed: Random seed.
        name: Registry name for the card.
        dataset: What the data is, for the card.
        data_sha256: SHA-256 of the data, for the card.

    Returns:
        ``(detector, card)``.

    Raises:
        DataFileError: The book has no ``monthly_charges`` column.
    """
    started = time.perf_counter()
    features = billing_features(book)
    detector = AnomalyDetector(seed=seed).fit(features)
    scores = detector.score_samples(features)
    quantiles = np.quantile(scores, [0.5, 0.9, 0.99])
    metrics = {
        "score_p50": float(quantiles[0]),
        "score_p90": float(quantiles[1]),
        "score_p99": float(quantiles[2]),
        "score_max": float(scores.max()),
        "share_above_0_5": float(np.mean(scores > 0.5)),
        "n_rows": float(len(scores)),
    }
    return detector, ModelCard.new(
        name=name,
        data_sha256=data_sha256,
        dataset=dataset,
        target=None,
        features=detector.features,
        params=detector.get_params(),
        metrics=metrics,
        evaluation=(
            "unsupervised, no labels: in-sample anomaly score distribution; "
            f"{_peer_note(book, features)}"
        ),
        model_type=type(detector).__name__,
        n_rows=len(features),
        training_seconds=time.perf_counter() - started,
    )


def train_labelled_detector(
    data: pd.DataFrame,
    label: str,
    seed: int = 42,
    *,
    name: str,
    dataset: str = "",
    data_sha256: str = "",
) -> tuple[AnomalyDetector, ModelCard]:
    """Fit the detector without labels on a labelled benchmark and score it against them.

    The detector is unsupervised: it is fit on all labelled rows' features (the labels
    never reach it) and its scores on the same rows are compared with the labels, as in
    the ODDS/PyOD benchmarks. No cross-validation is needed since nothing is learnt from
    the labels. Metrics: ``roc_auc``, ``average_precision``, ``n_rows``, ``anomaly_rate``.

    Args:
        data: Numeric features plus the label column.
        label: Label column, 1 (or yes/true) = anomaly.
        seed: Random seed.
        name: Registry name for the card.
        dataset: File name of the data, for the card.
        data_sha256: SHA-256 of that file, for the card.

    Returns:
        ``(detector, card)``.

    Raises:
        DataFileError: The label column is missing or not two-valued.
        InvalidInputError: A feature column is not numeric.
    """
    started = time.perf_counter()
    require_columns(data, [label], "benchmark")
    labels, positive, _ = encode_binary_target(data[label], label)
    labelled = data.loc[labels.notna()]
    y = labels[labels.notna()].to_numpy(dtype=int)
    features = labelled.drop(columns=label)
    detector = AnomalyDetector(seed=seed).fit(features)
    metrics = ranking_metrics(y, detector.score_samples(features))
    return detector, ModelCard.new(
        name=name,
        data_sha256=data_sha256,
        dataset=dataset,
        target=label,
        features=detector.features,
        params=detector.get_params(),
        metrics={**metrics, "n_rows": float(len(y)), "anomaly_rate": float(y.mean())},
        evaluation="fit unsupervised on all rows, scored in-sample against the labels",
        model_type=type(detector).__name__,
        positive_label=positive,
        n_rows=len(y),
        training_seconds=time.perf_counter() - started,
    )


def _numeric_matrix(X: pd.DataFrame) -> np.ndarray:
    wrong = [str(name) for name in X.columns if not pd.api.types.is_numeric_dtype(X[name])]
    if wrong:
        raise InvalidInputError("X", f"non-numeric column(s) {wrong}", "numeric columns only")
    return X.to_numpy(dtype=float)


def _robust_scale(values: np.ndarray, median: np.ndarray) -> np.ndarray:
    deviation = np.abs(values - median)
    scale = MAD_TO_SD * np.nanmedian(deviation, axis=0)
    fallback = MEAN_AD_TO_SD * np.nanmean(deviation, axis=0)
    scale = np.where(scale > 0, scale, fallback)
    return np.where(scale > 0, scale, 1.0)


def _peer_price(peers: pd.DataFrame, monthly: pd.Series) -> np.ndarray:
    """Least-squares fit of the monthly price on the peer attributes, for every row."""
    priced = monthly.notna().to_numpy()
    fit = LinearRegression().fit(peers[priced], monthly[priced])
    return np.asarray(fit.predict(peers))


def _peer_note(book: pd.DataFrame, features: pd.DataFrame) -> str:
    if "price_residual" not in features.columns:
        return "no price_residual (the book has no peer column)"
    return f"price_residual fit on {', '.join(peer_columns(book))}"


def _number(rows: pd.DataFrame, column: str, position: int) -> float | None:
    if column not in rows.columns:
        return None
    value = rows[column].iloc[position]
    return None if pd.isna(value) else float(value)
