"""Real client books for the tests: the Telco file and the IBM attrition file (data/), given
ids of their own and renamed columns, as two MSPs would export them."""

import io

import pandas as pd

from aimesh.config import REPO_DATA_DIR


def telco_export() -> pd.DataFrame:
    """The Telco table as an MSP exports it: ``account_id`` ids ``ACME-00001``... and renamed
    outcome, tenure and price columns (``Churn Flag``, ``Months``, ``MRR``, ``Billed To Date``)."""
    frame = pd.read_csv(REPO_DATA_DIR / "telco_churn.csv", dtype=str, keep_default_na=False)
    frame.insert(0, "account_id", [f"ACME-{i:05d}" for i in range(1, len(frame) + 1)])
    renamed = {
        "churn": "Churn Flag",
        "tenure": "Months",
        "monthly_charges": "MRR",
        "total_charges": "Billed To Date",
    }
    return frame.rename(columns=renamed)


TELCO_MAP = [
    "client_id=account_id",
    "churned=Churn Flag",
    "tenure_months=Months",
    "monthly_charges=MRR",
    "total_charges=Billed To Date",
]
"""``--map`` items of :func:`telco_export`."""


def attrition_export() -> pd.DataFrame:
    """The attrition table with ``ref`` ids ``EMP-0001``... (the file has none)."""
    frame = pd.read_csv(REPO_DATA_DIR / "attrition.csv", dtype=str, keep_default_na=False)
    frame.insert(0, "ref", [f"EMP-{i:04d}" for i in range(1, len(frame) + 1)])
    return frame


ATTRITION_MAPPING = {"client_id": "ref", "churned": "Attrition", "monthly_charges": "MonthlyIncome"}
"""The mapping of :func:`attrition_export` (monthly income stands for the monthly price)."""


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as a UTF-8 CSV file."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()
