from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aimesh.errors import ModelNotFoundError
from aimesh.ml.registry import ModelRegistry
from aimesh.portfolio import training
from aimesh.portfolio.book import BookModel, ClientBook
from aimesh.portfolio.training import load_book_model, train_book_models
from tests.helpers.books import book_info, telco_frame


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return telco_frame(600)


def train(frame: pd.DataFrame, root: Path, **info: object) -> list[BookModel]:
    return train_book_models(
        frame,
        book_info(frame, **info),
        ModelRegistry(root),
        seed=0,
        folds=3,  # type: ignore[arg-type]
    )


def test_the_sample_books_models_are_ready_with_their_cards(sample_book: ClientBook) -> None:
    churn, billing = sample_book.info.models

    assert (churn.model, churn.status, billing.model, billing.status) == (
        "churn",
        "ready",
        "billing-anomaly",
        "ready",
    )
    card = sample_book.churn().card
    assert churn.version == card.version and churn.metrics == card.metrics
    assert card.metrics["roc_auc"] > 0.84 and "5-fold" in card.evaluation
    assert card.dataset == "sample: telco_churn.csv"
    assert card.data_sha256 == sample_book.info.sha256
    assert card.params["monotone_increasing"] == ["monthly_charges"]
    assert "name" not in card.features and "churned" not in card.features
    detector = sample_book.anomaly().card
    assert billing.version == detector.version
    assert detector.features == [
        "monthly_charges",
        "tenure_months",
        "billing_gap",
        "price_residual",
    ]


def test_a_tenants_book_is_named_on_the_cards(small: pd.DataFrame, tmp_path: Path) -> None:
    models = train(small, tmp_path, tenant="beta", version=2)

    cards = [ModelRegistry(tmp_path).card(m.model) for m in models]

    assert [c.dataset for c in cards] == ["client book v2 of beta"] * 2


def test_load_book_model_loads_the_version_the_book_records(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    first = train(small, tmp_path)
    second = train(small.iloc[:500], tmp_path)
    registry = ModelRegistry(tmp_path)

    old = load_book_model(registry, "churn", first[0].version or "")
    new = load_book_model(registry, "churn", second[0].version or "")

    assert old.card.n_rows == 600 and new.card.n_rows == 500
    assert registry.card("churn").version == second[0].version
    with pytest.raises(ModelNotFoundError):
        load_book_model(registry, "churn", "churn-19990101T000000000000Z-00000000")


@pytest.mark.parametrize(
    ("change", "model", "detail"),
    [
        (lambda f: f.drop(columns="churned"), 0, "no churn outcomes: 600 rows, 0 labelled"),
        (lambda f: f.assign(churned=np.nan), 0, "no churn outcomes: 600 rows, 0 labelled"),
        (lambda f: f.assign(churned=0.0), 0, "one class only: 600 labelled rows, all stayed"),
        (
            lambda f: f.assign(churned=np.where(f.index < "C00101", 1.0, np.nan)),
            0,
            "one class only: 100 labelled rows, all churned",
        ),
        (
            lambda f: f.assign(churned=f["churned"].where(f.index < "C00031")),
            0,
            "rows: 30 labelled rows, too few to train (allowed: at least 50 rows)",
        ),
        (lambda f: f.drop(columns="monthly_charges"), 1, "no monthly_charges column"),
        (
            lambda f: f.assign(monthly_charges=np.nan),
            1,
            "no monthly_charges values: 600 rows, all empty",
        ),
    ],
)
def test_a_model_the_book_cannot_have_is_unavailable_with_the_reason(
    small: pd.DataFrame, tmp_path: Path, change, model: int, detail: str
) -> None:
    models = train(change(small), tmp_path)

    name = ["churn", "billing-anomaly"][model]
    assert models[model] == BookModel(model=name, status="unavailable", detail=detail)
    assert models[1 - model].status == "ready"


def test_churn_risk_rises_with_the_price_only_when_the_book_has_prices(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    train(small.assign(monthly_charges=np.nan), tmp_path)

    assert ModelRegistry(tmp_path).card("churn").params["monotone_increasing"] == []


def test_a_training_that_raises_fails_without_crashing_the_caller(
    small: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(training, "train_billing_detector", broken)

    churn, billing = train(small, tmp_path)

    assert billing == BookModel(
        model="billing-anomaly", status="failed", detail="RuntimeError: disk on fire"
    )
    assert churn.status == "ready"
    assert ModelRegistry(tmp_path).names() == ["churn"]


def test_a_broken_frame_fails_the_churn_model(small: pd.DataFrame, tmp_path: Path) -> None:
    frame = small.assign(monthly_charges=small["monthly_charges"].astype(object))
    frame.loc["C00005", "monthly_charges"] = "free"  # text in a number column

    churn, _ = train(frame, tmp_path)

    assert churn.status == "failed" and churn.version is None
    assert churn.detail is not None and "monthly_charges" in churn.detail
