"""The sample book: ids by row, models trained on first use, retrained when stale."""

import pytest

from aimesh.config import Settings
from aimesh.errors import DataFileError, UnknownClientError
from aimesh.portfolio.sample import normalize_sample_id, sample_book, sample_info


@pytest.mark.parametrize(
    ("raw", "canonical"), [("C00042", "C00042"), (" c42 ", "C00042"), ("C1234", "C01234")]
)
def test_sample_ids_accept_any_case_and_padding(raw: str, canonical: str) -> None:
    assert normalize_sample_id(raw) == canonical


@pytest.mark.parametrize("raw", ["C0", "42", "X00042", ""])
def test_malformed_sample_ids_are_unknown_clients(raw: str) -> None:
    with pytest.raises(UnknownClientError):
        normalize_sample_id(raw)


def test_the_sample_is_every_telco_row_marked_as_sample(ml_settings: Settings) -> None:
    book = sample_book(ml_settings)

    assert book.sample and book.version == 0 and book.info.rows == 600
    assert book.lookup("c600") == "C00600" and book.frame().index[0] == "C00001"
    assert {"churned", "tenure_months", "monthly_charges"} <= set(book.frame().columns)
    with pytest.raises(UnknownClientError):
        book.lookup("C00601")


def test_models_train_on_first_use_then_load(ml_settings: Settings) -> None:
    assert {m.status for m in sample_info(ml_settings).models} == {"pending"}

    trained = sample_book(ml_settings).churn()

    again = sample_book(ml_settings.model_copy(update={"home": ml_settings.home})).churn()
    assert again.card.version == trained.card.version
    assert trained.card.dataset == "sample: telco_churn.csv"
    assert trained.card.params["monotone_increasing"] == ["monthly_charges"]
    assert {m.status for m in sample_info(ml_settings).models} == {"ready"}


def test_a_changed_seed_retrains(ml_settings: Settings) -> None:
    first = sample_book(ml_settings).anomaly()

    again = sample_book(ml_settings.model_copy(update={"seed": 7})).anomaly()

    assert again.card.params["seed"] == 7 and again.card.version != first.card.version


def test_a_missing_sample_file_is_a_data_file_error(ml_settings: Settings) -> None:
    (ml_settings.data_dir / "telco_churn.csv").unlink()

    with pytest.raises(DataFileError, match="telco_churn.csv"):
        sample_book(ml_settings)
