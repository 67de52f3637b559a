"""Client books trained once per session: the sample (Telco) book and a book without outcomes."""

import pandas as pd
import pytest

from aimesh.portfolio.book import ClientBook
from tests.helpers.books import book_info, telco_frame, trained_book


@pytest.fixture(scope="session")
def sample_book(tmp_path_factory: pytest.TempPathFactory) -> ClientBook:
    """The whole Telco table as the sample book (version 0), models trained with 5 folds."""
    frame = telco_frame()
    info = book_info(frame, tenant="acme", version=0, sample=True, source="telco_churn.csv")
    return trained_book(frame, info, tmp_path_factory.mktemp("sample-models"), folds=5)


def plain_frame() -> pd.DataFrame:
    """800 Telco clients under other column names, without outcomes, tenure or totals."""
    telco = telco_frame(800)
    frame = pd.DataFrame(
        {
            "name": [f"Client {i}" for i in range(len(telco))],
            "monthly_charges": telco["monthly_charges"].to_numpy(),
            "plan": telco["internet_service"].to_numpy(),
            "term": telco["contract"].to_numpy(),
            "seats": telco["partner"].to_numpy() + 1,
            "email": [f"it{i}@client.example" for i in range(len(telco))],
        },
        index=pd.Index([f"K{i:04d}" for i in range(len(telco))], name="client_id"),
    )
    frame.loc["K0007", "monthly_charges"] = 400.0  # billed four times the dearest plan
    return frame


@pytest.fixture(scope="session")
def plain_book(tmp_path_factory: pytest.TempPathFactory) -> ClientBook:
    """A tenant's book (beta, version 2) that can have a billing detector but no churn model."""
    frame = plain_frame()
    info = book_info(frame, tenant="beta", version=2, source="clients.csv")
    return trained_book(frame, info, tmp_path_factory.mktemp("plain-models"))
