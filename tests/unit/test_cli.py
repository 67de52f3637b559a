import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from aimesh.cli import app
from aimesh.config import get_settings

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
