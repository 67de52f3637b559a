"""Train the models of one client book version and load them back by version.

Each version of a tenant's book gets its own churn model and billing-anomaly detector,
saved in the tenant's registry; the :class:`~aimesh.portfolio.book.BookModel` list says
which are ready (with their card version and metrics), which the book cannot have and
why, and which failed (the previous version's models keep answering).
"""

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from aimesh.errors import DataFileError
from aimesh.ml.anomaly import train_billing_detector
from aimesh.ml.churn import train_churn
from aimesh.ml.registry import ModelCard, ModelRegistry, Trained
from aimesh.ml.service import BILLING_ANOMALY, CHURN
from aimesh.portfolio.book import BookInfo, BookModel

logger = logging.getLogger(__name__)

BOOK_MODELS = (CHURN, BILLING_ANOMALY)
"""The models of every book version, in the order :func:`train_book_models` returns them."""

PRICE = "monthly_charges"
"""The price column: churn risk may not fall as it rises; the billing detector needs it."""


def book_dataset(info: BookInfo) -> str:
    """What a book's models are trained on, for their cards.

    ``sample: telco_churn.csv`` for the sample book, else ``client book v3 of acme``.
    """
    return (
        f"sample: {info.source}" if info.sample else f"client book v{info.version} of {info.tenant}"
    )


def train_book_models(
    frame: pd.DataFrame, info: BookInfo, registry: ModelRegistry, *, seed: int, folds: int
) -> list[BookModel]:
    """Train and save the churn model and the billing-anomaly detector of a book version.

    - ``churn``: :func:`~aimesh.ml.churn.train_churn` on the table without ``name``, target
      ``churned`` (rows without an outcome are left out), churn risk non-decreasing in
      ``monthly_charges`` when the book has it (with two values or more). Metrics: the
      card's ``folds``-fold CV (``roc_auc``, ``average_precision``, ``brier``...).
      Unavailable without outcomes of both classes.
    - ``billing-anomaly``: :func:`~aimesh.ml.anomaly.train_billing_detector` on the
      table. Metrics: the in-sample score distribution. Unavailable without
      ``monthly_charges`` values.

    A table that cannot train a model (a :class:`~aimesh.errors.DataFileError`, e.g. too
    few outcomes) makes it ``unavailable`` with the error's message; any other error makes
    it ``failed`` with the message (logged with its traceback). Never raises for a model.

    Args:
        frame: The book's table (see :class:`~aimesh.portfolio.book.ClientBook`).
        info: The book version; its ``sha256`` goes on the cards.
        registry: The tenant's registry; each ready model is saved as a new version.
        seed: Random seed of both models and of the CV folds.
        folds: CV folds of the churn model (and of its calibration).

    Returns:
        ``[churn, billing-anomaly]`` with status ``ready``, ``unavailable`` or ``failed``.
    """
    dataset = book_dataset(info)

    def churn() -> tuple[Any, ModelCard]:
        prices = PRICE in frame.columns and frame[PRICE].nunique() > 1
        return train_churn(
            frame.drop(columns=["name"], errors="ignore"),
            "churned",
            seed,
            folds,
            monotone_increasing=[PRICE] if prices else [],
            name=CHURN,
            dataset=dataset,
            data_sha256=info.sha256,
        )

    def billing() -> tuple[Any, ModelCard]:
        return train_billing_detector(
            frame, seed, name=BILLING_ANOMALY, dataset=dataset, data_sha256=info.sha256
        )

    return [
        _train(CHURN, registry, churn_unavailable(frame), churn),
        _train(BILLING_ANOMALY, registry, billing_unavailable(frame), billing),
    ]


def churn_unavailable(frame: pd.DataFrame) -> str | None:
    """Why a book cannot have a churn model, None if it may.

    E.g. ``no churn outcomes: 5000 rows, 0 labelled`` or ``one class only: 4800 labelled
    rows, all stayed``.
    """
    outcomes = frame["churned"].dropna() if "churned" in frame.columns else frame.iloc[:0, :0]
    if outcomes.empty:
        return f"no churn outcomes: {len(frame)} rows, 0 labelled"
    if outcomes.nunique() == 1:
        which = "churned" if outcomes.iloc[0] == 1 else "stayed"
        return f"one class only: {len(outcomes)} labelled rows, all {which}"
    return None


def billing_unavailable(frame: pd.DataFrame) -> str | None:
    """Why a book cannot have a billing-anomaly detector, None if it may."""
    if PRICE not in frame.columns:
        return f"no {PRICE} column"
    if frame[PRICE].notna().sum() == 0:
        return f"no {PRICE} values: {len(frame)} rows, all empty"
    return None


def load_book_model(registry: ModelRegistry, name: str, version: str) -> Trained[Any]:
    """Load exactly the model version a book records.

    Raises:
        ModelNotFoundError: The registry has no such version.
        ModelUnreadableError: Its files cannot be read.
    """
    model, card = registry.load(name, version)
    return Trained(model, card)


def _train(
    name: str,
    registry: ModelRegistry,
    unavailable: str | None,
    train: Callable[[], tuple[Any, ModelCard]],
) -> BookModel:
    if unavailable is not None:
        return BookModel(model=name, status="unavailable", detail=unavailable)
    try:
        model, card = train()
        registry.save(model, card)
    except DataFileError as error:
        return BookModel(model=name, status="unavailable", detail=str(error))
    except Exception as error:  # the caller records the failure; older versions keep answering
        logger.exception("training %s failed", name)
        return BookModel(model=name, status="failed", detail=f"{type(error).__name__}: {error}")
    return BookModel(model=name, version=card.version, status="ready", metrics=card.metrics)
