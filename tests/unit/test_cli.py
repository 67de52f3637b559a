import asyncio
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from aimesh.cli import app
from aimesh.config import get_settings
from aimesh.portfolio.books import PortfolioView, opened_portfolios
from tests.helpers.exports import TELCO_MAP, csv_bytes, telco_export

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AIMESH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIMESH_PROVIDERS", '["local"]')
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def run_json(*args):
    result = runner.invoke(app, [*args, "--json"])
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return result.exit_code, json.loads(lines[0])


@pytest.mark.parametrize("question", ["", "   ", "why? " * 500])
def test_ask_refuses_an_empty_or_overlong_question(question):
    code, payload = run_json("ask", question)
    assert code == 2
    assert payload["error"]["type"] == "InvalidInputError"
    assert payload["error"]["message"].startswith("question:")


def test_ask_refuses_an_unknown_client_before_calling_a_model():
    code, payload = run_json("ask", "What price for client C09999?")
    assert code == 2
    assert payload["error"]["type"] == "UnknownClientError"
    assert "C09999" in payload["error"]["message"]


def test_ask_without_any_usable_provider_says_what_to_set(monkeypatch, tmp_path):
    monkeypatch.setenv("AIMESH_GGUF_PATH", str(tmp_path / "missing.gguf"))
    get_settings.cache_clear()
    result = runner.invoke(app, ["ask", "Which clients will churn?"])
    assert result.exit_code == 4
    assert "missing.gguf" in result.stderr
    assert "Traceback" not in result.output


def test_train_rejects_a_file_without_the_target_column(tmp_path):
    csv = tmp_path / "clients.csv"
    pd.DataFrame({"tenure": range(60), "plan": ["a", "b"] * 30}).to_csv(csv, index=False)
    code, payload = run_json("train", "churn", "--data", str(csv), "--target", "churned")
    assert code == 2
    assert "churned" in payload["error"]["message"] and "tenure" in payload["error"]["message"]


def test_train_rejects_a_single_class_target(tmp_path):
    csv = tmp_path / "clients.csv"
    pd.DataFrame({"tenure": range(60), "churned": ["no"] * 60}).to_csv(csv, index=False)
    code, payload = run_json("train", "churn", "--data", str(csv), "--target", "churned")
    assert code == 2
    assert "churned" in payload["error"]["message"]


def test_train_on_any_churn_csv_prints_the_card(tmp_path):
    telco = pd.read_csv(get_settings().data_dir / "telco_churn.csv").head(600)
    telco = telco.rename(columns={"churn": "churned"})
    telco["churned"] = telco["churned"].map({"Yes": "True", "No": "False"})
    csv = tmp_path / "subset.csv"
    telco.to_csv(csv, index=False)
    code, payload = run_json("train", "churn", "--data", str(csv), "--target", "churned")
    assert code == 0, payload
    assert set(payload) == {"model", "version", "data_sha256", "metrics"}
    assert 0.5 < payload["metrics"]["roc_auc"] <= 1.0


def test_train_rejects_an_unknown_model():
    code, payload = run_json("train", "weather", "--data", "clients.csv")
    assert code == 2
    assert payload["error"]["message"].startswith("model:")


def test_eval_lists_every_model_with_classifier_metrics():
    code, payload = run_json("eval")
    assert code == 0, payload
    rows = {row["model"]: row for row in payload["models"]}
    assert {"churn", "billing-anomaly"} <= set(rows)
    for row in payload["models"]:
        assert set(row) == {"model", "version", "dataset", "metrics"}
    classifiers = [r for r in payload["models"] if "roc_auc" in r["metrics"]]
    assert classifiers and all("average_precision" in r["metrics"] for r in classifiers)


def test_keys_create_prints_the_key_once_and_stores_only_its_hmac(home):
    import sqlite3

    code, payload = run_json("keys", "create", "--tenant", "acme", "--role", "admin")
    assert code == 0
    assert set(payload) >= {"key_id", "api_key", "tenant", "role", "scopes"}
    assert (payload["tenant"], payload["role"]) == ("acme", "admin")
    assert payload["scopes"] == ["admin", "create", "delete", "read", "write"]
    assert payload["api_key"].startswith(f"amk_{payload['key_id']}.")
    with sqlite3.connect(home / "home" / "aimesh.sqlite") as db:
        stored = db.execute("SELECT secret_hash FROM api_keys").fetchall()
    assert len(stored) == 1 and len(stored[0][0]) == 64
    assert payload["api_key"] not in stored[0][0]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--tenant", "acme", "--role", "root"], "role"),
        (["--tenant", "bad tenant"], "tenant"),
        (["--tenant", "acme", "--role", "user", "--scope", "admin"], "scopes"),
    ],
)
def test_keys_create_refuses_bad_input_naming_the_field(args, field):
    code, payload = run_json("keys", "create", *args)
    assert code == 2
    assert payload["error"]["message"].startswith(f"{field}:")


@pytest.fixture
def book_csv(tmp_path):
    """The first 600 rows of the Telco export (tests/helpers/exports.py) as a CSV file."""
    path = tmp_path / "clients.csv"
    path.write_bytes(csv_bytes(telco_export().head(600)))
    return path


def import_book(path, *extra, tenant="acme"):
    args = ["portfolio", "import", str(path), "--tenant", tenant]
    return run_json(*args, *(arg for item in TELCO_MAP for arg in ("--map", item)), *extra)


def test_portfolio_import_with_wait_prints_the_version_with_its_trained_models(book_csv):
    code, info = import_book(book_csv, "--wait")

    assert code == 0, info
    assert (info["tenant"], info["version"], info["rows"]) == ("acme", 1, 600)
    export = telco_export().head(600)
    churned, prices = export["Churn Flag"], export["MRR"].astype(float)
    assert info["label"] == {
        "column": "Churn Flag",
        "positives": int((churned == "Yes").sum()),
        "negatives": int((churned == "No").sum()),
    }
    columns = {c["name"]: c for c in info["columns"]}
    assert list(columns)[0] == "client_id"
    assert (columns["client_id"]["source"], columns["client_id"]["field"]) == (
        "account_id",
        "client_id",
    )
    assert columns["monthly_charges"] == {
        "name": "monthly_charges",
        "type": "number",
        "field": "monthly_charges",
        "source": "MRR",
        "values": None,
        "min": prices.min(),
        "max": prices.max(),
        "missing": 0,
    }
    assert columns["contract"]["type"] == "category" and columns["contract"]["field"] is None
    assert columns["contract"]["values"] == ["Month-to-month", "One year", "Two year"]
    models = {m["model"]: m for m in info["models"]}
    assert set(models) == {"churn", "billing-anomaly"}
    assert all(m["status"] == "ready" and m["version"] for m in models.values())
    assert 0.6 < models["churn"]["metrics"]["roc_auc"] <= 1
    assert 0.3 < models["churn"]["metrics"]["average_precision"] <= 1


def test_portfolio_import_without_wait_leaves_the_models_pending_and_show_lists_it(book_csv):
    code, info = import_book(book_csv)
    assert code == 0, info
    assert [(m["model"], m["status"], m["version"]) for m in info["models"]] == [
        ("churn", "pending", None),
        ("billing-anomaly", "pending", None),
    ]

    code, view = run_json("portfolio", "show", "--tenant", "acme")

    assert code == 0, view
    assert view == asyncio.run(portfolio_view("acme"))  # what GET /portfolio answers
    assert (view["sample"], view["current_version"]) == (True, 0)  # v1 still training
    assert [(v["status"], v["info"]) for v in view["versions"]] == [("training", info)]
    assert view["sample_book"]["sample"] is True


async def portfolio_view(tenant):
    async with opened_portfolios(get_settings()) as portfolios:
        return (await portfolios.view(tenant)).model_dump(mode="json")


def test_portfolio_show_of_a_tenant_without_books_says_the_sample_answers():
    code, view = run_json("portfolio", "show", "--tenant", "beta")

    assert code == 0, view
    assert PortfolioView.model_validate(view).versions == []
    assert (view["tenant"], view["sample"], view["current_version"]) == ("beta", True, 0)


def export_file(tmp_path, change):
    """A CSV of the first 600 rows of the Telco export after ``change(frame)``."""
    export = telco_export().head(600)
    change(export)
    path = tmp_path / "changed.csv"
    path.write_bytes(csv_bytes(export))
    return path


def duplicate_id(frame):
    frame.loc[9, "account_id"] = "ACME-00003"


@pytest.mark.parametrize(
    ("change", "extra", "field", "named"),
    [
        (duplicate_id, [], "client_id", ["'account_id'", "'ACME-00003'", "rows 3 and 10"]),
        (None, ["--map", "name=Customer"], "map", ["'Customer'"]),
        (None, ["--map", "colour=MRR"], "map", ["'colour'"]),
        (None, ["--map", "churned=Months"], "map", ["'churned'"]),  # mapped twice
        (None, ["--map", "client_id"], "map", ["'client_id'"]),  # no "="
    ],
)
def test_portfolio_import_refuses_bad_input_naming_the_column(
    tmp_path, book_csv, change, extra, field, named
):
    path = export_file(tmp_path, change) if change else book_csv

    code, payload = import_book(path, *extra)

    assert code == 2
    message = payload["error"]["message"]
    assert message.startswith(f"{field}:")
    assert all(name in message for name in named), message
    assert asyncio.run(portfolio_view("acme"))["versions"] == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("Kundennummer;Kündigt\nK1;ja\n".encode("latin-1"), "is not UTF-8 CSV or Parquet"),
        (b"PAR1 not really parquet", "is not a readable Parquet file"),
        (b"", "is empty"),
        (None, "cannot read"),  # a directory
    ],
)
def test_portfolio_import_refuses_a_file_it_cannot_read(tmp_path, content, problem):
    path = tmp_path / "clients.csv"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)

    code, payload = import_book(path)

    assert code == 2
    assert payload["error"]["message"].startswith("file:")
    assert problem in payload["error"]["message"] and "clients.csv" in payload["error"]["message"]


def test_portfolio_import_without_a_mapping_asks_for_the_id_column(book_csv):
    code, payload = run_json("portfolio", "import", str(book_csv), "--tenant", "acme")

    assert code == 2
    assert payload["error"]["message"].startswith("map: client_id is not mapped")


def test_portfolio_import_of_a_missing_file_names_it(tmp_path):
    code, payload = import_book(tmp_path / "nowhere.csv")

    assert code == 2
    assert "cannot read" in payload["error"]["message"]
    assert "nowhere.csv" in payload["error"]["message"]


@pytest.mark.parametrize("command", ["import", "show"])
@pytest.mark.parametrize("tenant", ["bad tenant", "-acme", "a" * 65, ""])
def test_portfolio_commands_refuse_a_malformed_tenant_first(tmp_path, command, tenant):
    args = [str(tmp_path / "nowhere.csv")] if command == "import" else []

    code, payload = run_json("portfolio", command, *args, "--tenant", tenant)

    assert code == 2
    assert payload["error"]["message"].startswith("tenant:")
